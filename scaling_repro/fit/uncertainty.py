"""Bootstrap confidence intervals for a fitted law's parameters and predictions.

Each replicate refits the law, polishing from the full-data optimum (as Besiroglu et al. 2024
do; a global search per replicate would cost ~5x more for the same answer in practice), on

- ``resample="points"``: the fitting points drawn with replacement, or
- ``resample="runs"``: every point kept, its loss re-averaged over its runs (seeds) drawn with
  replacement, which is the noise the paper averages away (3 runs per point), or
- ``resample="runs+points"``: both, hierarchically: every point's loss (held-out points too)
  re-averaged over its runs drawn with replacement, then the fitting points drawn with
  replacement. The replicate's losses of every point are kept (``Bootstrap.losses``), so a
  held-out error can be judged replicate by replicate, seed noise of the held-out points included.

Intervals are percentile intervals at ``level`` (e.g. 0.9 -> 5th and 95th percentiles).
Prediction intervals come from the stored replicates: :meth:`LawFit.prediction_interval`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from tqdm.auto import tqdm

from scaling_repro.errors import UserError
from scaling_repro.fit.design import Group, build_design
from scaling_repro.fit.laws import get_law
from scaling_repro.fit.optimize import solve
from scaling_repro.fit.record import Bootstrap, LawFit
from scaling_repro.fit.threads import one_blas_thread

RESAMPLES = ("points", "runs", "runs+points")


def resampled_losses(fit: LawFit, rng: np.random.Generator, resample: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (losses of all points, indices of the points to fit) for one bootstrap replicate."""
    loss = np.array([p.loss for p in fit.points], float)
    fitting = np.flatnonzero([not p.held_out for p in fit.points])
    if resample == "points":
        return loss, rng.choice(fitting, size=len(fitting), replace=True)
    averaged = range(len(loss)) if resample == "runs+points" else fitting
    for i in averaged:
        runs = fit.points[i].runs
        if len(runs) > 1:
            loss[i] = float(np.mean(rng.choice(runs, size=len(runs), replace=True)))
    if resample == "runs+points":
        return loss, rng.choice(fitting, size=len(fitting), replace=True)
    return loss, fitting


def refit(
    fit: LawFit, loss: np.ndarray, index: np.ndarray | None = None, fixed: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Return the parameters of ``fit``'s law refit to new per-point losses, polishing from ``fit``.

    ``index`` (integer indices, repeats allowed) selects the points to fit, by default the
    fitting set; ``fixed`` overrides the values of ``fit``'s fixed parameters. Keeps every other
    option of ``fit``; used by the bootstrap.
    """
    law = get_law(fit.law)
    x = None if not law.uses_x else np.array([p.x for p in fit.points], float)
    df = np.array([p.data_size for p in fit.points], float)
    if index is None:
        index = np.flatnonzero([not p.held_out for p in fit.points])
    held_fixed = {name: fit.params[name] for name in fit.fixed}
    held_fixed.update(fixed or {})
    design = build_design(
        law, [Group("all", None if x is None else x[index], df[index], loss[index])], fixed=held_fixed
    )
    solution = solve(design, fit.residual, fit.huber_delta, fit.estimator, start={**fit.params, **held_fixed})
    params = design.raw_params(solution.theta, solution.coefs)
    return {p: params[p] for p in law.params}


@one_blas_thread
def bootstrap_fit(
    fit: LawFit,
    n_samples: int = 200,
    resample: str = "points",
    level: float = 0.9,
    seed: int = 0,
) -> LawFit:
    """Return a copy of ``fit`` with ``bootstrap`` filled: ``n_samples`` replicates and intervals."""
    if resample not in RESAMPLES:
        raise UserError(f"resample: got {resample!r}; allowed: {', '.join(map(repr, RESAMPLES))}")
    if not (isinstance(n_samples, int) and n_samples >= 2):
        raise UserError(f"bootstrap samples: got {n_samples!r}; need an integer >= 2")
    if not 0 < level < 1:
        raise UserError(f"level: got {level!r}; must be in (0, 1), e.g. 0.9")
    if resample == "runs" and not any(len(p.runs) > 1 for p in fit.points if not p.held_out):
        raise UserError("resample='runs' needs points with several runs (seeds); these points have at most one")
    rng = np.random.default_rng(seed)
    samples, losses = [], []
    for _ in tqdm(range(n_samples), desc="bootstrap", leave=False, disable=None):
        loss, index = resampled_losses(fit, rng, resample)
        samples.append(refit(fit, loss, index))
        losses.append(loss.tolist())
    names = list(fit.params)
    values = np.array([[s[name] for name in names] for s in samples])
    result = Bootstrap(
        n_samples=n_samples,
        resample=resample,
        level=level,
        seed=seed,
        intervals={},
        samples=samples,
        losses=losses if resample == "runs+points" else None,
    )
    low, high = result.interval(values)
    result.intervals = {name: (float(lo), float(hi)) for name, lo, hi in zip(names, low, high)}
    return fit.model_copy(update={"bootstrap": result})
