"""Where FMT overtakes a PET method, from two fitted model-size laws (finding 6, Fig. 5).

For one base model X, the overtaking size is the smallest Df in :data:`SEARCH` at which FMT's
predicted loss is at most the PET method's: below it the PET method is better, from it on FMT.
Its value encodes three cases that order naturally:

- ``0``: FMT is already at least as good at the smallest Df searched (no PET regime);
- a finite Df: a PET -> FMT switch at that data size;
- ``inf``: FMT never catches up within the search range (e.g. En-De FMT vs LoRA in Table 4).

Only the first FMT-catches-up point counts: with E_FMT > E_PET the laws cross back at
astronomically large Df, which says nothing about the data sizes anyone finetunes on.
Evaluated on a log-Df grid and refined linearly, for many parameter sets at once (bootstrap
replicates), so it is cheap enough to run per replicate. Also here: which models learn the
task at all (models whose loss is flat in Df for every method carry no crossing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from scaling_repro.analysis.checks import StudyChecks

SEARCH = (1.0, 1e15)  # examples, as critical_data_size's bounds
GRID = 800
LAW_PARAMS = ("A", "alpha", "beta", "E")


def overtaking_size(full: Mapping[str, np.ndarray], pet: Mapping[str, np.ndarray], x: float) -> np.ndarray:
    """Return the Df at which FMT first reaches the PET method's loss at model size ``x``, per
    parameter set (arrays of A, alpha, beta, E of equal length): 0 when FMT is at least as good
    from the start of :data:`SEARCH`, inf when it never is (see the module docstring)."""
    t = np.linspace(math.log(SEARCH[0]), math.log(SEARCH[1]), GRID)

    def loss(p: Mapping[str, np.ndarray]) -> np.ndarray:
        a, alpha, beta, e = (np.asarray(p[k], float)[:, None] for k in LAW_PARAMS)
        return np.exp(np.log(a) - alpha * math.log(x) - beta * t[None, :]) + e

    with np.errstate(over="ignore", invalid="ignore"):
        gap = loss(full) - loss(pet)  # > 0: the PET method is better
    caught = gap <= 0
    first = np.argmax(caught, axis=1)
    out = np.full(len(gap), np.inf)
    for i, j in enumerate(first):
        if not caught[i, j]:
            continue
        if j == 0:
            out[i] = 0.0
            continue
        g0, g1 = gap[i, j - 1], gap[i, j]
        out[i] = math.exp(t[j - 1] + (t[j] - t[j - 1]) * g0 / (g0 - g1))
    return out


def params_of(fit) -> dict[str, np.ndarray]:
    """Return a fit's point estimate as length-1 arrays of A, alpha, beta, E."""
    return {k: np.array([fit.params[k]], float) for k in LAW_PARAMS}


def replicate_params(fit) -> dict[str, np.ndarray] | None:
    """Return a fit's bootstrap replicates as arrays of A, alpha, beta, E (None without)."""
    if fit.bootstrap is None or not fit.bootstrap.samples:
        return None
    return {k: np.array([s[k] for s in fit.bootstrap.samples], float) for k in LAW_PARAMS}


def shown(size: float) -> str:
    """Return an overtaking size as text: 'FMT throughout', 'never' or '2.4e+05'."""
    if size == 0:
        return "FMT better throughout"
    return "never" if math.isinf(size) else f"{size:.2g}"


def learning_models(checks: StudyChecks, sigmas: float) -> tuple[list[str], list[str]]:
    """Return (models that learn the task, models that do not), smallest model first.

    A model learns when for at least one method its measured test loss at the largest Df is
    below that at the smallest Df by more than ``sigmas`` standard errors of that difference
    (per-run seed sigma times sqrt(1/n_first + 1/n_last)); without a measured sigma any drop counts.
    """
    learns: dict[str, bool] = {}
    for curve in checks.curves:
        sigma = checks.noise[curve.method].sigma if curve.method in checks.noise else None
        drop = curve.losses[0] - curve.losses[-1]
        tol = 0.0 if sigma is None else sigmas * sigma * math.sqrt(1 / curve.runs[0] + 1 / curve.runs[-1])
        learns[curve.model] = learns.get(curve.model, False) or (len(curve.losses) > 1 and drop > tol)
    return [m for m, ok in learns.items() if ok], [m for m, ok in learns.items() if not ok]
