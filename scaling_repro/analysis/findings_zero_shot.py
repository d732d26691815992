"""Finding 7: PET generalizes better zero-shot than FMT, especially for large models.

Read from the zero-shot test loss where the records have it (teacher-forced on unseen
directions), else from zero-shot chrF, each averaged over the model-size experiment's
finetuning data sizes. Judged on replicates: each (method, model, Df) cell's mean is drawn
around its measured mean with the method's pooled seed sigma over sqrt(runs) (the sigma pools
every setting run with several seeds, a better estimate than resampling a cell's two runs;
without a measured sigma a cell's runs are drawn with replacement), so

- **PET better at the largest model**: PET's score beats FMT's there, and
- **especially for large models**: that gap exceeds the gap at the smallest model,

each in at least ``(1 + level) / 2`` of the replicates. Either going the other way as often is a
contradiction; anything else is undecided.
"""

from __future__ import annotations

import numpy as np

from scaling_repro.analysis.checks import ZeroShot
from scaling_repro.analysis.experiments import METHOD_NAMES
from scaling_repro.analysis.reproduction import StudyAnalysis
from scaling_repro.analysis.verdicts import Finding, combine
from scaling_repro.config.recipe import METHODS, PET_METHODS

CLAIM = "PET generalizes better zero-shot than FMT, especially for large models."
REPLICATE_SEED = 7


def score_replicates(entry: ZeroShot, sigma: float | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``n`` replicates of ``entry``'s score (mean over data sizes of each size's mean over runs):
    each size's mean drawn from N(mean, sigma / sqrt(runs)); without a sigma, its runs drawn with
    replacement (a single run fixed)."""
    per_size = []
    for runs in entry.run_scores.values():
        values = np.asarray(runs, float)
        if sigma:
            per_size.append(values.mean() + rng.normal(0.0, sigma / np.sqrt(len(values)), n))
        else:
            per_size.append(rng.choice(values, size=(n, len(values)), replace=True).mean(axis=1))
    return np.mean(per_size, axis=0)


def finding_7(analysis: StudyAnalysis) -> Finding:
    """Return finding 7: PET better than FMT zero-shot at the largest model, by more than at the smallest,
    on replicates of the runs (see the module docstring)."""
    level, n = analysis.settings.level, analysis.settings.bootstrap
    need = (1.0 + level) / 2.0
    entries = analysis.checks.zero_shot
    metric = "loss" if any(z.metric == "loss" for z in entries) else "chrf"
    scores = {(z.method, z.model): z for z in entries if z.metric == metric}
    models = list(dict.fromkeys(z.model for z in entries if z.metric == metric))
    criterion = (
        f"zero-shot {'test loss' if metric == 'loss' else 'chrF'}, mean over the finetuning data sizes: at the "
        f"largest model Prompt and LoRA both better than FMT, and by more than at the smallest model, each in >= "
        f"{need:.0%} of the replicates (every cell's mean drawn with the seed sigma); 'not reproduced' when either "
        "is reversed as often"
    )
    testable = len(models) >= 2 and all((m, x) in scores for m in METHODS for x in (models[0], models[-1]))
    if not testable:
        evidence = ["zero-shot scores were not measured for every method at two model sizes"]
        return Finding(number=7, claim=CLAIM, criterion=criterion, verdict="not testable", evidence=evidence)
    small, large = models[0], models[-1]
    sign = -1.0 if metric == "loss" else 1.0  # gap > 0: the PET method generalizes better
    evidence = [] if metric == "loss" else ["the records have no zero-shot test loss, so chrF is used"]
    if not n:
        evidence.append("no replicates (analysis.bootstrap = 0)")
        return Finding(number=7, claim=CLAIM, criterion=criterion, verdict="inconclusive", evidence=evidence)
    rng = np.random.default_rng(REPLICATE_SEED)

    def sigma(method: str) -> float | None:
        noise = analysis.checks.noise.get(method)
        return None if noise is None else noise.zero_shot_sigmas.get(metric)

    reps = {key: score_replicates(scores[key], sigma(key[0]), n, rng) for key in scores if key[1] in (small, large)}
    states = []
    for method in PET_METHODS:
        if method not in analysis.methods:
            continue
        gap_large = sign * (reps[(method, large)] - reps[("full", large)])
        gap_small = sign * (reps[(method, small)] - reps[("full", small)])
        growth = gap_large - gap_small
        point_large = sign * (scores[(method, large)].score - scores[("full", large)].score)
        point_small = sign * (scores[(method, small)].score - scores[("full", small)].score)
        better, more = np.mean(gap_large > 0), np.mean(growth > 0)
        if better >= need and more >= need:
            states.append("agree")
        elif 1 - better >= need or 1 - more >= need:
            states.append("contra")
        else:
            states.append("unclear")
        evidence.append(
            f"{METHOD_NAMES[method]} better than FMT by zero-shot {metric}: {point_large:+.3g} at {large} (better in "
            f"{better:.0%}), {point_small:+.3g} at {small}; the gap grows in {more:.0%} of {n} replicates "
            f"-> {states[-1]}"
        )
    return Finding(number=7, claim=CLAIM, criterion=criterion, verdict=combine(states), evidence=evidence)
