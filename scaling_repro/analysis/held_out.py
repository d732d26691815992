"""How well a fitted law forecasts its held-out points, as a share of the loss, against a naive forecast.

Finding 1 asks whether the multiplicative law extrapolates. An absolute error in nats means
different things at a loss of 0.3 and of 2, so the error is relative: the mean over held-out
points of ``|predicted - measured| / measured``. A law that extrapolates must also beat the
simplest forecast there is, the **naive forecast**: a held-out point's loss predicted as the
measured loss of its nearest measured setting one grid step down (the largest model as the next
smaller one at the same Df; the largest Df as the next smaller Df at the same x).

Both errors are computed on every bootstrap replicate of a ``runs+points`` bootstrap
(:mod:`scaling_repro.fit.uncertainty`): the replicate's law against the replicate's re-averaged
held-out losses, so the seed noise of the measured held-out points is part of the comparison,
not only the fitting points'. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling_repro.fit.laws import get_law, predict
from scaling_repro.fit.record import LawFit


@dataclass(frozen=True)
class HeldOutErrors:
    """A law's relative held-out error and the naive forecast's, at the fit and per replicate."""

    law: float  # mean |predicted - measured| / measured over the held-out points
    naive: float | None  # the same for the naive forecast (None where no point has a neighbour)
    law_replicates: np.ndarray | None  # per bootstrap replicate (None without a runs+points bootstrap)
    naive_replicates: np.ndarray | None
    points: int  # held-out points


def naive_neighbours(fit: LawFit) -> list[tuple[int, int]]:
    """Return (held-out point, neighbour) index pairs: each held-out point with the measured setting
    one grid step down its held-out axis (x first, then Df); points without one are left out."""
    xs = np.array([np.nan if p.x is None else p.x for p in fit.points], float)
    dfs = np.array([p.data_size for p in fit.points], float)
    pairs = []
    for i, point in enumerate(fit.points):
        if not point.held_out:
            continue
        same_df = np.flatnonzero((dfs == dfs[i]) & (xs < xs[i]))
        same_x = np.flatnonzero((xs == xs[i]) & (dfs < dfs[i]))
        if point.x is not None and xs[i] == np.nanmax(xs) and len(same_df):
            pairs.append((i, int(same_df[np.argmax(xs[same_df])])))
        elif len(same_x):
            pairs.append((i, int(same_x[np.argmax(dfs[same_x])])))
    return pairs


def _relative(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Mean relative absolute error along the last axis."""
    return np.mean(np.abs(predicted - measured) / np.abs(measured), axis=-1)


def held_out_errors(fit: LawFit) -> HeldOutErrors | None:
    """Return the law's and the naive forecast's relative held-out errors (see the module docstring),
    or None when the fit has no held-out points."""
    held = np.flatnonzero([p.held_out for p in fit.points])
    if not len(held):
        return None
    law = get_law(fit.law)
    x = None if not law.uses_x else np.array([p.x for p in fit.points], float)[held]
    df = np.array([p.data_size for p in fit.points], float)[held]
    loss = np.array([p.loss for p in fit.points], float)
    pairs = naive_neighbours(fit)
    rows, neighbours = (np.array(v, int) for v in zip(*pairs)) if pairs else (np.array([], int),) * 2
    law_error = float(_relative(predict(law, fit.params, x, df), loss[held]))
    naive_error = float(_relative(loss[neighbours], loss[rows])) if pairs else None
    law_reps = naive_reps = None
    boot = fit.bootstrap
    if boot is not None and boot.losses:
        losses = np.array(boot.losses, float)  # replicates x points
        preds = np.stack([predict(law, sample, x, df) for sample in boot.samples])
        law_reps = _relative(preds, losses[:, held])
        naive_reps = _relative(losses[:, neighbours], losses[:, rows]) if pairs else None
    return HeldOutErrors(law_error, naive_error, law_reps, naive_reps, len(held))
