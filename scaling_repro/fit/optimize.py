"""Minimizing the summed Huber loss of a :class:`~scaling_repro.fit.design.Design`.

Objective (Hoffmann et al. 2022, approach 3; the paper's Sec. 3)::

    sum_i Huber_delta(r_i),   r_i = L_hat_i - L_i ("linear")  or  log L_hat_i - log L_i ("log")

over the free exponents and the free coefficients, each coefficient ``>= 0``.

Parameterization. The paper (as Hoffmann et al.) writes ``A = exp(a)`` to keep coefficients
positive and well scaled. Here scale is handled by dividing inputs by their geometric mean
(:mod:`~scaling_repro.fit.design`), so internal coefficients are of the order of the loss, and
positivity by L-BFGS-B bounds ``c >= 0``. Same optimum wherever it is interior, but when the
data put a coefficient at zero (e.g. E -> 0, which synthetic Table 4 data with small exponents
do) ``exp(e)`` makes L-BFGS crawl towards ``e = -inf`` for thousands of iterations, while the
bound is reached in a few.

Two stages, because a dense grid of L-BFGS starts over all parameters is slow and a single
start is unreliable:

1. **Global search over the exponents only (variable projection).** For fixed exponents the law
   is linear in its coefficients, so each cell of a grid over the exponents needs only a small
   non-negative robust regression (IRLS with coordinate-descent NNLS, batched over all cells;
   for the log residual it uses the first-order surrogate ``(L_hat - L) / L``). Cells are
   ranked by the exact objective at that solution.
2. **Polish** the best, mutually distant cells (up to ``N_POLISH``, until two of them reach the
   same best objective) with L-BFGS-B on all parameters with the analytic gradient, on an
   objective rescaled to order 1 and with tolerances tight enough that it converges (scipy's
   default ``ftol`` is absolute for objectives below 1 and stops a summed Huber loss of ~1e-3
   long before its optimum).

``estimator="huber_mle"`` instead maximizes the likelihood of a Huber density with a fitted
scale ``sigma`` (``sum Huber_delta(r / sigma) + n log sigma``), the point estimate of
Besiroglu et al. (2024, "Chinchilla scaling: a replication attempt").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from scaling_repro.fit.design import Design

Residual = Literal["linear", "log"]
Estimator = Literal["huber", "huber_mle"]

EXPONENT_BOUNDS = (-2.0, 6.0)  # for the polish; wide, only there to keep exp() finite
COEF_MAX = 1e8  # internal coefficients (loss units at the reference point) stay in [0, COEF_MAX * max L]
GRID_RANGE = (-0.5, 2.0)  # exponents tried by the global search
N_POLISH = 4  # grid cells polished
MIN_SEPARATION = 0.15  # polished cells differ by at least this much in some exponent
AGREE_RTOL = 1e-9  # stop polishing once two starts reach the same best objective (relative)
IRLS_STEPS = 8
NNLS_SWEEPS = 12


@dataclass(frozen=True)
class Solution:
    """The optimum: free exponents, free coefficients (internal units) and the objective."""

    theta: np.ndarray
    coefs: np.ndarray
    objective: float
    scale: float | None  # sigma of estimator="huber_mle"
    n_starts: int
    converged: bool


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Return the elementwise Huber loss: r^2/2 inside [-delta, delta], delta(|r| - delta/2) outside."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _terms(design: Design, theta: np.ndarray) -> np.ndarray:
    """Return the (k, n) term values without coefficients (internal units)."""
    return design.mask * np.exp(design.log_offset - design.features @ theta)


def _coefficients(design: Design, coefs: np.ndarray) -> np.ndarray:
    """Return the (k,) coefficient of each term: the free ones from ``coefs``, else the fixed value."""
    return design.fixed_coefs + coefs @ design.coef_matrix


def residuals(design: Design, theta: np.ndarray, coefs: np.ndarray, residual: Residual) -> np.ndarray:
    """Return the residuals at free exponents ``theta`` and free coefficients ``coefs``."""
    pred = _coefficients(design, coefs) @ _terms(design, theta)
    if residual == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(pred) - np.log(design.loss)
    return pred - design.loss


def _value_and_grad(u: np.ndarray, design: Design, residual: Residual, delta: float, sigma: float, scale: float):
    """Return (objective, gradient) of the summed Huber loss of r / sigma at ``u = (theta, c)``, times ``scale``."""
    p = len(design.exponents)
    terms = _terms(design, u[:p])
    contrib = _coefficients(design, u[p:])[:, None] * terms  # (k, n)
    pred = contrib.sum(axis=0)
    if residual == "log":
        if np.any(pred <= 0):
            return np.inf, np.zeros_like(u)
        r = (np.log(pred) - np.log(design.loss)) / sigma
        d_pred = 1.0 / (pred * sigma)
    else:
        r = (pred - design.loss) / sigma
        d_pred = np.full_like(pred, 1.0 / sigma)
    value = float(huber(r, delta).sum())
    g_pred = np.clip(r, -delta, delta) * d_pred  # d objective / d pred_i
    grad_theta = -np.tensordot(contrib * g_pred, design.features, axes=([0, 1], [0, 1]))
    grad_coef = design.coef_matrix @ (terms @ g_pred)
    return value * scale, np.concatenate([grad_theta, grad_coef]) * scale


def objective(design: Design, theta: np.ndarray, coefs: np.ndarray, residual: Residual, delta: float) -> float:
    """Return the summed Huber loss at free exponents ``theta`` and free coefficients ``coefs``."""
    return float(huber(residuals(design, theta, coefs, residual), delta).sum())


def _grid(p: int) -> np.ndarray:
    """Return the (cells, p) grid of exponents for the global search (about 100-1500 cells)."""
    if p == 0:
        return np.zeros((1, 0))
    step = {1: 0.02, 2: 0.1, 3: 0.25}.get(p, 0.5)
    axis = np.arange(GRID_RANGE[0], GRID_RANGE[1] + step / 2, step)
    mesh = np.meshgrid(*([axis] * p), indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _grid_search(design: Design, residual: Residual, delta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve the inner coefficient problem on every grid cell; return (thetas, coefs, objectives)."""
    thetas = _grid(len(design.exponents))
    # (cells, k, n) term values; fixed-coefficient terms go into an offset.
    terms = design.mask[None] * np.exp(design.log_offset[None] - np.einsum("knp,gp->gkn", design.features, thetas))
    fixed = design.coef_index < 0
    offset = np.einsum("k,gkn->gn", np.nan_to_num(design.coef_fixed[fixed]), terms[:, fixed])
    # Collapse terms sharing a coefficient: basis (cells, kf, n).
    basis = np.einsum("fk,gkn->gfn", design.coef_matrix, terms)
    target = design.loss[None] - offset
    row_scale = 1.0 / design.loss if residual == "log" else np.ones_like(design.loss)
    basis_s, target_s = basis * row_scale, target * row_scale
    kf = basis.shape[1]
    coefs = np.full((len(thetas), kf), float(np.median(design.loss)) / max(kf, 1))
    weights = np.ones_like(target_s)
    for _ in range(IRLS_STEPS):
        gram = np.einsum("gfn,gn,ghn->gfh", basis_s, weights, basis_s)
        rhs = np.einsum("gfn,gn,gn->gf", basis_s, weights, target_s)
        diag = np.maximum(np.einsum("gff->gf", gram), 1e-300)
        for _ in range(NNLS_SWEEPS):  # projected coordinate descent for the NNLS
            for f in range(kf):
                step = (rhs[:, f] - np.einsum("gh,gh->g", gram[:, f], coefs)) / diag[:, f]
                coefs[:, f] = np.maximum(coefs[:, f] + step, 0.0)
        resid = np.einsum("gf,gfn->gn", coefs, basis_s) - target_s
        weights = np.minimum(1.0, delta / np.maximum(np.abs(resid), 1e-300))
    floor = 1e-9 * float(np.max(np.abs(design.loss)))
    coefs = np.maximum(coefs, floor)
    pred = offset + np.einsum("gf,gfn->gn", coefs, basis)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(pred) - np.log(design.loss) if residual == "log" else pred - design.loss
    values = huber(r, delta).sum(axis=1)
    values[~np.isfinite(values)] = np.inf
    return thetas, coefs, values


def _distinct_best(thetas: np.ndarray, values: np.ndarray, count: int) -> list[int]:
    """Return indices of the ``count`` best cells, skipping cells close to an already chosen one."""
    order = np.argsort(values, kind="stable")
    axis = np.unique(thetas[:, 0]) if thetas.shape[1] else np.zeros(1)
    step = float(np.min(np.diff(axis))) if len(axis) > 1 else 0.0
    separation = max(1.5 * step, MIN_SEPARATION)
    chosen: list[int] = []
    for index in order:
        if not np.isfinite(values[index]):
            break
        if all(np.max(np.abs(thetas[index] - thetas[c])) > separation for c in chosen):
            chosen.append(int(index))
        if len(chosen) == count:
            break
    return chosen or [int(order[0])]


def polish(design: Design, u0: np.ndarray, residual: Residual, delta: float, sigma: float = 1.0):
    """Run L-BFGS-B from ``u0 = (theta, c)``; return (u, objective, converged)."""
    p = len(design.exponents)
    bounds = [EXPONENT_BOUNDS] * p + [(0.0, COEF_MAX * float(np.max(np.abs(design.loss))))] * len(design.coefficients)
    u0 = np.clip(u0, [b[0] for b in bounds], [b[1] for b in bounds])
    start, _ = _value_and_grad(u0, design, residual, delta, sigma, 1.0)
    scale = 1.0 / max(start, 1e-300) if np.isfinite(start) else 1.0
    result = minimize(
        _value_and_grad,
        u0,
        args=(design, residual, delta, sigma, scale),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 20000, "maxfun": 40000, "ftol": 1e-15, "gtol": 1e-11, "maxcor": 30, "maxls": 60},
    )
    return result.x, float(result.fun / scale), bool(result.success)


def solve(
    design: Design,
    residual: Residual = "linear",
    delta: float = 1e-3,
    estimator: Estimator = "huber",
    start: Mapping[str, float] | None = None,
) -> Solution:
    """Return the global optimum of the design's objective (see the module docstring).

    With ``start`` (raw parameters by name) there is no global search: one polish from there.
    """
    p = len(design.exponents)
    if start is not None:
        starts = [design.internal(start)]
    else:
        thetas, coefs, values = _grid_search(design, residual, delta)
        chosen = _distinct_best(thetas, values, N_POLISH)
        starts = [np.concatenate([thetas[i], coefs[i]]) for i in chosen]
    results = []
    for u0 in starts:
        results.append(polish(design, u0, residual, delta))
        ranked = sorted(r[1] for r in results)
        if len(ranked) >= 2 and ranked[1] - ranked[0] <= AGREE_RTOL * abs(ranked[0]):
            break  # two distant starts reached the same best optimum
    u, value, ok = min(results, key=lambda r: r[1])
    sigma = None
    if estimator == "huber_mle":
        u, value, sigma, ok = _huber_mle(design, u, residual, delta)
    return Solution(theta=u[:p], coefs=u[p:], objective=value, scale=sigma, n_starts=len(results), converged=ok)


def _huber_nll(r: np.ndarray, delta: float, log_sigma: float) -> float:
    """Return sum Huber_delta(r / sigma) + n log sigma (the Huber-density NLL up to a constant)."""
    return float(huber(r / np.exp(log_sigma), delta).sum() + len(r) * log_sigma)


def _best_log_sigma(r: np.ndarray, delta: float) -> float:
    spread = float(np.log(max(np.mean(np.abs(r)), 1e-300)))
    result = minimize_scalar(
        lambda s: _huber_nll(r, delta, s),
        bounds=(spread - 30.0, spread + 5.0),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return float(result.x)


def _huber_mle(design: Design, u: np.ndarray, residual: Residual, delta: float):
    """Maximize the Huber likelihood with a fitted scale, from the summed-Huber optimum ``u``.

    For a fixed sigma the NLL is a summed Huber loss with threshold ``delta * sigma``, so this
    alternates: sigma from the residuals, then a polish with that threshold, until sigma settles.
    Returns (u, nll, sigma, converged).
    """
    p = len(design.exponents)
    ok = True
    log_sigma = _best_log_sigma(residuals(design, u[:p], u[p:], residual), delta)
    for _ in range(50):
        u, _, ok = polish(design, u, residual, delta, sigma=float(np.exp(log_sigma)))
        new = _best_log_sigma(residuals(design, u[:p], u[p:], residual), delta)
        if abs(new - log_sigma) < 1e-10:
            log_sigma = new
            break
        log_sigma = new
    r = residuals(design, u[:p], u[p:], residual)
    return u, _huber_nll(r, delta, log_sigma), float(np.exp(log_sigma)), ok
