"""``fit_law``: fit one scaling law to (x, Df, loss) points and return a :class:`LawFit`.

Checks the input (clear errors for degenerate data), fits on the points that are not held out
with :mod:`scaling_repro.fit.optimize`, and evaluates the fit on both sets (Tables 2 / 6).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from scaling_repro.errors import UserError
from scaling_repro.fit.design import Group, build_design
from scaling_repro.fit.laws import Law, get_law, predict
from scaling_repro.fit.optimize import Estimator, Residual, solve
from scaling_repro.fit.record import FitPoint, LawFit
from scaling_repro.fit.threads import one_blas_thread
from scaling_repro.fit.uncertainty import bootstrap_fit

RESIDUALS = ("linear", "log")
ESTIMATORS = ("huber", "huber_mle")


def as_positive_array(values, name: str, n: int | None = None) -> np.ndarray:
    """Return ``values`` as a 1-D float array of finite positive numbers, or raise a UserError."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise UserError(f"{name}: expected numbers, got {values!r:.80}") from None
    if array.ndim != 1:
        raise UserError(f"{name}: expected a 1-D sequence, got shape {array.shape}")
    if n is not None and len(array) != n:
        raise UserError(f"{name}: has {len(array)} values but loss has {n}; they must be the same length")
    bad = np.flatnonzero(~np.isfinite(array) | (array <= 0))
    if len(bad):
        i = int(bad[0])
        raise UserError(
            f"{name}[{i}] = {float(array[i])!r}: every value must be a finite number > 0 "
            f"({len(bad)} bad value(s); drop failed runs or NaN rows first)"
        )
    return array


def check_options(law: str, residual: str, huber_delta: float, estimator: str) -> Law:
    """Return the law after checking the fit options; raise a UserError naming a bad one."""
    if residual not in RESIDUALS:
        raise UserError(f"residual: got {residual!r}; allowed: 'linear' (L_hat - L, the paper's) or 'log'")
    if estimator not in ESTIMATORS:
        raise UserError(f"estimator: got {estimator!r}; allowed: {', '.join(map(repr, ESTIMATORS))}")
    if not (isinstance(huber_delta, (int, float)) and np.isfinite(huber_delta) and huber_delta > 0):
        raise UserError(f"huber_delta: got {huber_delta!r}; must be a number > 0 (the paper uses 1e-3)")
    return get_law(law)


def require_distinct(values: np.ndarray, label: str, exponent: str, what: str) -> None:
    """Raise a UserError when ``values`` (the input of ``exponent``) has fewer than 2 distinct values."""
    if len(values) == 0:
        raise UserError(f"{what}: no fitting points (are they all held out?)")
    if len(np.unique(values)) < 2:
        raise UserError(
            f"{what}: every fitting point has the same {label} ({values[0]:g}), so {exponent} cannot be "
            f"fitted; use points with several {label} values" + (" or law='single' (no x)" if label == "x" else "")
        )


def check_identifiable(law: Law, x, data_size: np.ndarray, n_free: int, fixed: Mapping[str, float], what: str) -> None:
    """Raise a UserError when the fitting points cannot determine the law's free parameters."""
    if len(data_size) < n_free:
        raise UserError(
            f"{what}: {len(data_size)} fitting point(s) but {n_free} free parameter(s) in the {law.name} law; "
            "add points, hold fewer out, or fix parameters"
        )
    for term in law.terms:
        for exponent, source in term.powers:
            if exponent not in fixed:
                values = data_size if source == "df" else x
                require_distinct(values, "data size" if source == "df" else "x", exponent, what)


@one_blas_thread
def fit_law(
    x,
    data_size,
    loss,
    law: str = "multiplicative",
    residual: Residual = "linear",
    huber_delta: float = 1e-3,
    *,
    held_out=None,
    runs: Sequence[Sequence[float]] | None = None,
    fixed: Mapping[str, float] | None = None,
    estimator: Estimator = "huber",
    x_unit: str | None = None,
    df_unit: str = "examples",
    labels: Mapping[str, str] | None = None,
    start: Mapping[str, float] | None = None,
    bootstrap: int = 0,
    resample: str = "points",
    level: float = 0.9,
    seed: int = 0,
) -> LawFit:
    """Fit ``law`` to the points and return a :class:`LawFit`.

    ``x``, ``data_size`` and ``loss`` are 1-D array-likes of equal length (``x`` may be None for
    ``law="single"``), in raw units. The fit minimizes the summed Huber loss (threshold
    ``huber_delta``) of the ``residual`` ("linear": L_hat - L as the paper; "log": log L_hat -
    log L as Hoffmann et al.) over the points not marked in ``held_out`` (a boolean array);
    held-out points are only predicted (``mad_held_out``). ``fixed`` holds parameters constant
    (e.g. ``{"beta": 0.15, "E": 0.75}``). ``estimator="huber_mle"`` fits a Huber likelihood with
    a fitted scale instead (Besiroglu et al. 2024). ``start`` (raw parameters) skips the global
    search and only polishes from there. ``bootstrap=N`` adds percentile intervals (``level``)
    from N refits on resampled ``points`` or ``runs`` (per-point run losses in ``runs``).
    """
    law_obj = check_options(law, residual, huber_delta, estimator)
    loss_arr = as_positive_array(loss, "loss")
    n = len(loss_arr)
    df_arr = as_positive_array(data_size, "data_size", n)
    x_arr = None
    if law_obj.uses_x:
        if x is None:
            raise UserError(f"x: the {law} law ({law_obj.formula}) needs x values; use law='single' without x")
        x_arr = as_positive_array(x, "x", n)
    held = np.zeros(n, bool) if held_out is None else np.asarray(held_out, dtype=bool)
    if held.shape != (n,):
        raise UserError(f"held_out: expected {n} booleans, got shape {held.shape}")
    runs = [[] for _ in range(n)] if runs is None else list(runs)
    if len(runs) != n:
        raise UserError(f"runs: expected one list of run losses per point ({n}), got {len(runs)}")
    run_lists = [as_positive_array(r, f"runs[{i}]").tolist() if len(r) else [] for i, r in enumerate(runs)]

    fit_mask = ~held
    fixed = dict(fixed or {})
    x_fit = None if x_arr is None else x_arr[fit_mask]
    n_free = sum(name not in fixed for name in law_obj.params)
    check_identifiable(law_obj, x_fit, df_arr[fit_mask], n_free, fixed, "fit_law")
    design = build_design(law_obj, [Group("all", x_fit, df_arr[fit_mask], loss_arr[fit_mask])], fixed=fixed)
    solution = solve(design, residual, float(huber_delta), estimator, start=start)
    params = design.raw_params(solution.theta, solution.coefs)
    params = {p: params[p] for p in law_obj.params}
    predicted = predict(law_obj, params, x_arr, df_arr)
    abs_dev = np.abs(predicted - loss_arr)
    fit = LawFit(
        law=law_obj.name,
        formula=law_obj.formula,
        residual=residual,
        huber_delta=float(huber_delta),
        estimator=estimator,
        params=params,
        fixed=sorted(fixed),
        x_unit=x_unit if law_obj.uses_x else None,
        df_unit=df_unit,
        objective=solution.objective,
        scale=solution.scale,
        n_points=int(fit_mask.sum()),
        n_held_out=int(held.sum()),
        mad_fit=float(abs_dev[fit_mask].mean()),
        mad_held_out=float(abs_dev[held].mean()) if held.any() else None,
        points=[
            FitPoint(
                x=None if x_arr is None else float(x_arr[i]),
                data_size=float(df_arr[i]),
                loss=float(loss_arr[i]),
                predicted=float(predicted[i]),
                held_out=bool(held[i]),
                runs=run_lists[i],
            )
            for i in range(n)
        ],
        n_starts=solution.n_starts,
        converged=solution.converged,
        labels=dict(labels or {}),
    )
    if bootstrap:
        fit = bootstrap_fit(fit, n_samples=bootstrap, resample=resample, level=level, seed=seed)
    return fit
