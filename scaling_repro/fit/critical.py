"""Critical finetuning data size between two methods (Sec. 5, Fig. 5, Table 5).

The critical data size at base-model condition X is the Df at which method 1 and method 2
reach the same loss: ``L1(X, Df) = L2(X, Df)``. :func:`critical_data_size` finds it
numerically on the two fitted laws (the paper uses ``scipy.optimize.fsolve``; here the root is
bracketed on a log-Df grid and refined with ``scipy.optimize.brentq``, which cannot wander off).

When the gap between the methods is the constant E1 - E2 (their reducible terms are equal),
Eq. 3 gives a closed form for two multiplicative laws, :func:`critical_power_law`::

    Df_c = H * X^gamma,   H = (A1 / A2)^(1 / (beta1 - beta2)),   gamma = (alpha2 - alpha1) / (beta1 - beta2)
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import numpy as np
from scipy.optimize import brentq

from scaling_repro.errors import UserError
from scaling_repro.fit.laws import get_law, predict
from scaling_repro.fit.record import LawFit

# A LawFit, or (law name, params) for published numbers such as Table 4.
LawLike = LawFit | tuple[str, Mapping[str, float]]


def _law_params(fit: LawLike) -> tuple[str, Mapping[str, float]]:
    if isinstance(fit, LawFit):
        return fit.law, fit.params
    law, params = fit
    get_law(law)
    return law, params


def _gap(law1: str, params1, law2: str, params2, x, log_df: float) -> float:
    """Return L1 - L2 at (x, Df = exp(log_df))."""
    df = np.exp(log_df)
    return float(predict(law1, params1, x, df) - predict(law2, params2, x, df))


def critical_data_size(
    fit1: LawLike,
    fit2: LawLike,
    x=None,
    bounds: tuple[float, float] = (1.0, 1e15),
    grid: int = 400,
) -> np.ndarray:
    """Return the Df (same unit as the fits) where the two laws predict the same loss, per x.

    ``x`` is a scalar or array of base-model conditions (None for single-variable laws). Where
    the laws do not cross inside ``bounds`` the result is NaN; where they cross more than once
    it is the smallest crossing. Returns an array shaped like ``x``.
    """
    law1, params1 = _law_params(fit1)
    law2, params2 = _law_params(fit2)
    xs = np.atleast_1d(np.asarray(x if x is not None else np.nan, dtype=float))
    lo, hi = bounds
    if not (0 < lo < hi):
        raise UserError(f"bounds: got {bounds!r}; need 0 < low < high")
    log_df = np.linspace(np.log(lo), np.log(hi), grid)
    out = np.full(xs.shape, np.nan)
    for i, xi in enumerate(xs.ravel()):
        gap = partial(_gap, law1, params1, law2, params2, None if x is None else xi)
        values = np.array([gap(t) for t in log_df])
        zero = np.flatnonzero(values == 0)
        change = np.flatnonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0)
        if len(zero) and (not len(change) or zero[0] <= change[0]):
            out.flat[i] = np.exp(log_df[zero[0]])
        elif len(change):
            j = change[0]
            out.flat[i] = np.exp(brentq(gap, log_df[j], log_df[j + 1], xtol=1e-12, rtol=1e-12))
    return out.reshape(np.shape(x)) if x is not None and np.ndim(x) else out


def critical_power_law(fit1: LawLike, fit2: LawLike) -> tuple[float, float]:
    """Return (H, gamma) of Eq. 3 for two multiplicative laws (method 1 vs method 2)."""
    (law1, p1), (law2, p2) = _law_params(fit1), _law_params(fit2)
    if law1 != "multiplicative" or law2 != "multiplicative":
        raise UserError(f"the closed form Df_c = H * X^gamma needs two multiplicative laws, got {law1!r} and {law2!r}")
    d_beta = p1["beta"] - p2["beta"]
    if d_beta == 0:
        raise UserError("the two laws have the same beta, so Eq. 3 (division by beta1 - beta2) is undefined")
    with np.errstate(over="ignore"):  # nearly equal betas: H overflows to inf, not an error
        h = np.power(np.float64(p1["A"] / p2["A"]), 1.0 / d_beta)
    gamma = (p2["alpha"] - p1["alpha"]) / d_beta
    return float(h), float(gamma)
