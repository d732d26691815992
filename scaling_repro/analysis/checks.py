"""Measured checks of a reproduction: seed noise, data-scaling curves, the largest model, the
best method per setting, critical data sizes, zero-shot scores and convergence (is the best
checkpoint before the last step?). Torch-free.

Seed noise is measured, not assumed: runs that differ only in ``task.seed`` (another random
finetuning subset and init/shuffle order) give a pooled per-run standard deviation per method.
A difference between two point means of n1 and n2 runs counts as real when it exceeds
``noise_sigmas * sigma * sqrt(1/n1 + 1/n2)``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import combinations
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from scaling_repro.analysis.experiments import df_of
from scaling_repro.config.recipe import METHODS
from scaling_repro.config.study_plan import AnalysisSettings
from scaling_repro.errors import UserError
from scaling_repro.fit.critical import critical_data_size, critical_power_law
from scaling_repro.fit.record import JointFit
from scaling_repro.results import ZERO_SHOT_LOSS, RunRecord

ZERO_SHOT_METRIC = "chrf"
ZERO_SHOT_KEYS = (ZERO_SHOT_LOSS, ZERO_SHOT_METRIC)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Noise(_Record):
    """Seed noise of one method: pooled standard deviation of a single run's test loss (and of
    its zero-shot score)."""

    method: str
    sigma: float | None
    settings: int  # settings measured with >= 2 seeds
    runs: int
    zero_shot_sigma: float | None = None  # of the chrF score
    zero_shot_sigmas: dict[str, float] = {}  # zero-shot key (loss, chrf) -> pooled per-run sigma


class CurveCheck(_Record):
    """Does test loss fall with finetuning data for one method and model?"""

    method: str
    model: str
    data_sizes: list[int]
    losses: list[float]  # mean over seeds
    runs: list[int]
    worst_increase: float  # largest L(Df_i+1) - L(Df_i); <= 0 when strictly decreasing
    tolerance: float | None  # noise allowance of that step
    verdict: Literal["decreasing", "decreasing within noise", "not decreasing"]


class LargestCheck(_Record):
    """Is the largest model the best at one data size, for one method?"""

    method: str
    data_size: int
    largest: str
    largest_loss: float
    runner_up: str
    runner_up_loss: float
    tolerance: float | None
    verdict: Literal["best", "best within noise", "not best"]


class BestMethod(_Record):
    """The method with the lowest measured test loss at one model size and data size."""

    model: str
    data_size: int
    losses: dict[str, float]
    best: str
    margin: float  # second-best loss minus best loss
    tolerance: float | None


class CriticalSize(_Record):
    """Critical finetuning data size between two methods at one model (fitted laws)."""

    methods: tuple[str, str]
    model: str
    model_params: float
    data_size: float | None  # None: the fitted laws do not cross in [1, 1e15] examples


class CriticalPower(_Record):
    """Eq. 3 coefficients Df_c = H * X^gamma of two methods' model-size fits (Table 5)."""

    methods: tuple[str, str]
    H: float | None
    gamma: float | None


class ZeroShot(_Record):
    """Zero-shot score or loss after finetuning (mean over the model-size experiment's data sizes)."""

    method: str
    model: str
    metric: str  # "loss" (lower is better) or "chrf"
    score: float
    by_data_size: dict[int, float]
    runs: int = 0  # runs behind the mean
    run_scores: dict[int, list[float]] = {}  # data size -> every run's score (what finding 7 resamples)


class Convergence(_Record):
    """How many of one method's finetuned runs have their best dev checkpoint before the last
    step (the run saw its dev loss turn up), and which runs did not."""

    method: str
    runs: int
    converged: int  # best_step < steps
    not_converged: list[str] = []  # "model@revision Df=N seed=S" of the others


class StudyChecks(_Record):
    noise: dict[str, Noise]
    curves: list[CurveCheck]
    largest: list[LargestCheck]
    best_method: list[BestMethod]
    critical: list[CriticalSize]
    critical_power: list[CriticalPower]
    zero_shot: list[ZeroShot]
    convergence: list[Convergence] = []


def zero_shot_score(record: RunRecord, key: str = ZERO_SHOT_METRIC) -> float | None:
    """The record's zero-shot ``key`` (:data:`ZERO_SHOT_METRIC` or :data:`ZERO_SHOT_LOSS`, mean
    over directions), if any."""
    return (record.zero_shot.get(key) or {}).get("mean")


def _pooled_sigma(groups: list[list[float]]) -> float | None:
    """Pooled sample standard deviation of groups of repeated measurements (None without any)."""
    repeated = [values for values in groups if len(values) > 1]
    dof = sum(len(values) - 1 for values in repeated)
    if not dof:
        return None
    return math.sqrt(sum(float(np.var(v, ddof=1)) * (len(v) - 1) for v in repeated) / dof)


def measure_noise(records: list[RunRecord], method: str) -> Noise:
    """Pool the seed variance of every setting of ``method`` run with several seeds."""
    losses: dict[tuple, list[float]] = defaultdict(list)
    scores: dict[str, dict[tuple, list[float]]] = {k: defaultdict(list) for k in ZERO_SHOT_KEYS}
    for r in records:
        if r.ok and r.method == method and r.test_loss is not None:
            key = (r.model, r.pretrain_tokens, r.pet_params, r.finetune_examples)
            losses[key].append(r.test_loss)
            for name in ZERO_SHOT_KEYS:
                score = zero_shot_score(r, name)
                if score is not None:
                    scores[name][key].append(score)
    repeated = [v for v in losses.values() if len(v) > 1]
    sigmas = {name: _pooled_sigma(list(groups.values())) for name, groups in scores.items()}
    return Noise(
        method=method,
        sigma=_pooled_sigma(repeated),
        settings=len(repeated),
        runs=sum(map(len, repeated)),
        zero_shot_sigma=sigmas[ZERO_SHOT_METRIC],
        zero_shot_sigmas={k: v for k, v in sigmas.items() if v is not None},
    )


def _tolerance(noise: Noise, n1: int, n2: int, sigmas: float) -> float | None:
    return None if noise.sigma is None else sigmas * noise.sigma * math.sqrt(1 / n1 + 1 / n2)


def _means(records: list[RunRecord]) -> dict[tuple[str, int], tuple[float, int]]:
    """(model, Df) -> (mean test loss, runs)."""
    groups: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in records:
        assert r.test_loss is not None, f"run {r.run_id} has no test loss"  # experiment runs (finetuned_runs) have one
        groups[(r.model, int(df_of(r)))].append(float(r.test_loss))
    return {key: (float(np.mean(v)), len(v)) for key, v in groups.items()}


def _model_order(records: list[RunRecord]) -> list[str]:
    params = {r.model: r.model_params or 0 for r in records}
    return sorted(params, key=lambda model: params[model])


def check_curves(records: list[RunRecord], method: str, noise: Noise, sigmas: float) -> list[CurveCheck]:
    """One CurveCheck per model of the model-size experiment."""
    means = _means(records)
    checks = []
    for model in _model_order(records):
        sizes = sorted(df for m, df in means if m == model)
        losses = [means[(model, df)][0] for df in sizes]
        runs = [means[(model, df)][1] for df in sizes]
        steps = [
            (losses[i + 1] - losses[i], _tolerance(noise, runs[i], runs[i + 1], sigmas)) for i in range(len(sizes) - 1)
        ]
        worst, tol = max(steps, key=lambda s: s[0] - (s[1] or 0.0)) if steps else (0.0, None)
        if all(step <= 0 for step, _ in steps):
            verdict = "decreasing"
        elif all(t is not None and step <= t for step, t in steps):
            verdict = "decreasing within noise"
        else:
            verdict = "not decreasing"
        checks.append(
            CurveCheck(
                method=method,
                model=model,
                data_sizes=sizes,
                losses=losses,
                runs=runs,
                worst_increase=worst,
                tolerance=tol,
                verdict=verdict,
            )
        )
    return checks


def check_largest(records: list[RunRecord], method: str, noise: Noise, sigmas: float) -> list[LargestCheck]:
    """One LargestCheck per data size: the largest model against the best of the others."""
    means = _means(records)
    models = _model_order(records)
    largest, others = models[-1], models[:-1]
    checks = []
    for df in sorted({df for _, df in means}):
        if (largest, df) not in means or not any((m, df) in means for m in others):
            continue
        loss, n = means[(largest, df)]
        other = min((m for m in others if (m, df) in means), key=lambda m: means[(m, df)][0])
        other_loss, other_n = means[(other, df)]
        tol = _tolerance(noise, n, other_n, sigmas)
        verdict = (
            "best"
            if loss < other_loss
            else "best within noise"
            if tol is not None and loss - other_loss <= tol
            else "not best"
        )
        checks.append(
            LargestCheck(
                method=method,
                data_size=df,
                largest=largest,
                largest_loss=loss,
                runner_up=other,
                runner_up_loss=other_loss,
                tolerance=tol,
                verdict=verdict,
            )
        )
    return checks


def best_methods(size_records: dict[str, list[RunRecord]], noise: dict[str, Noise], sigmas: float) -> list[BestMethod]:
    """The best method at every (model, Df) of the model-size experiment present for all methods."""
    means = {m: _means(rs) for m, rs in size_records.items()}
    keys = set.intersection(*(set(v) for v in means.values())) if means else set()
    out = []
    for model, df in sorted(
        keys,
        key=lambda k: (min(r.model_params or 0 for rs in size_records.values() for r in rs if r.model == k[0]), k[1]),
    ):
        losses = {m: means[m][(model, df)][0] for m in means}
        ranked = sorted(losses, key=lambda m: losses[m])
        tol = None
        if len(ranked) > 1:
            sig0, sig1 = (noise[m].sigma for m in ranked[:2])
            if sig0 is not None and sig1 is not None:
                runs = [means[m][(model, df)][1] for m in ranked[:2]]
                tol = sigmas * math.sqrt(sig0**2 / runs[0] + sig1**2 / runs[1])
        margin = losses[ranked[1]] - losses[ranked[0]] if len(ranked) > 1 else 0.0
        out.append(BestMethod(model=model, data_size=df, losses=losses, best=ranked[0], margin=margin, tolerance=tol))
    return out


def critical_sizes(
    fits: dict[str, JointFit], size_records: dict[str, list[RunRecord]]
) -> tuple[list[CriticalSize], list[CriticalPower]]:
    """Critical data sizes of every method pair at every model size, from the model-size fits."""
    params = {r.model: float(r.model_params) for rs in size_records.values() for r in rs if r.model_params}
    sizes, powers = [], []
    for a, b in combinations([m for m in METHODS if m in fits], 2):
        fa, fb = fits[a].fits["model_size"], fits[b].fits["model_size"]
        for model, x in sorted(params.items(), key=lambda kv: kv[1]):
            value = float(critical_data_size(fa, fb, x)[0])
            sizes.append(
                CriticalSize(
                    methods=(a, b), model=model, model_params=x, data_size=None if math.isnan(value) else value
                )
            )
        try:
            h_fit, gamma_fit = critical_power_law(fa, fb)
            h, gamma = (h_fit if math.isfinite(h_fit) else None), (gamma_fit if math.isfinite(gamma_fit) else None)
        except UserError:  # equal betas: Eq. 3 undefined
            h, gamma = None, None
        powers.append(CriticalPower(methods=(a, b), H=h, gamma=gamma))
    return sizes, powers


def zero_shot_scores(records: list[RunRecord], method: str) -> list[ZeroShot]:
    """Mean zero-shot loss and chrF per model (the 'mean' over directions), where measured."""
    out = []
    for key in ZERO_SHOT_KEYS:
        by_model: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in records:
            score = zero_shot_score(r, key)
            if score is not None:
                by_model[r.model][int(df_of(r))].append(score)
        for model in _model_order(records):
            if model in by_model:
                per_df = {df: float(np.mean(v)) for df, v in sorted(by_model[model].items())}
                out.append(
                    ZeroShot(
                        method=method,
                        model=model,
                        metric=key,
                        score=float(np.mean(list(per_df.values()))),
                        by_data_size=per_df,
                        runs=sum(map(len, by_model[model].values())),
                        run_scores={df: list(v) for df, v in sorted(by_model[model].items())},
                    )
                )
    return out


def check_convergence(records: list[RunRecord], method: str) -> Convergence:
    """Count ``method``'s finetuned runs (steps > 0) whose best step lies before the last one."""
    runs = [r for r in records if r.method == method and r.steps > 0]
    late = [r for r in runs if r.best_step is None or r.best_step >= r.steps]
    late.sort(key=lambda r: (r.model, r.pretrain_tokens or 0, r.finetune_examples or 0, r.seed))
    return Convergence(
        method=method,
        runs=len(runs),
        converged=len(runs) - len(late),
        not_converged=[f"{r.model}@{r.pretrain_tokens} Df={r.finetune_examples} seed={r.seed}" for r in late],
    )


def run_checks(
    records: list[RunRecord],
    size_records: dict[str, list[RunRecord]],
    fits: dict[str, JointFit],
    settings: AnalysisSettings,
) -> StudyChecks:
    """Return every check of the study (see the module docstring)."""
    noise = {m: measure_noise(records, m) for m in size_records}
    k = settings.noise_sigmas
    critical, power = critical_sizes(fits, size_records)
    return StudyChecks(
        noise=noise,
        curves=[c for m, rs in size_records.items() for c in check_curves(rs, m, noise[m], k)],
        largest=[c for m, rs in size_records.items() for c in check_largest(rs, m, noise[m], k)],
        best_method=best_methods(size_records, noise, k),
        critical=critical,
        critical_power=power,
        zero_shot=[z for m, rs in size_records.items() for z in zero_shot_scores(rs, m)],
        convergence=[check_convergence(records, m) for m in size_records],
    )
