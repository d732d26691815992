"""The paper's seven findings, each checked against a study's fitted numbers and measured losses.

Every finding has a criterion stated in numbers (``Finding.criterion``, also printed in
findings.md) and a verdict that follows from the numbers only:

- **reproduced**: the criterion holds, and where it compares fitted parameters, their bootstrap
  intervals (``analysis.settings.level``, e.g. 90%) do not overlap;
- **not reproduced**: the opposite holds beyond the same uncertainty (intervals on the other side,
  or a measured difference larger than the seed-noise allowance);
- **inconclusive**: the uncertainty covers both (overlapping intervals, differences within seed
  noise), or the study did not measure what the finding needs.

Differences of measured losses or scores are judged against the measured seed noise (see
:mod:`scaling_repro.analysis.checks`): ``noise_sigmas`` standard deviations of the difference.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

from scaling_repro.fit import LawFit
from scaling_repro.analysis.experiments import METHOD_NAMES
from scaling_repro.analysis.reproduction import StudyAnalysis

Verdict = Literal["reproduced", "not reproduced", "inconclusive"]
PET = ("prompt", "lora")


class Finding(BaseModel):
    """One of the paper's findings and what this study says about it."""

    model_config = ConfigDict(extra="forbid")

    number: int
    claim: str  # the paper's finding (PAPER.md, "Findings to reproduce")
    criterion: str  # what is checked, in numbers
    verdict: Verdict
    evidence: list[str]  # the numbers behind the verdict, one line each


class Estimate(BaseModel):
    """A fitted parameter with its bootstrap interval (None without a bootstrap)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    value: float
    interval: tuple[float, float] | None

    def __str__(self) -> str:
        if self.interval is None:
            return f"{self.name} = {self.value:.4g}"
        return f"{self.name} = {self.value:.4g} [{self.interval[0]:.4g}, {self.interval[1]:.4g}]"


def estimate(fit: LawFit, param: str, name: str) -> Estimate:
    """Return ``fit.params[param]`` with its bootstrap interval."""
    interval = fit.bootstrap.intervals.get(param) if fit.bootstrap else None
    return Estimate(name=name, value=fit.params[param], interval=tuple(interval) if interval else None)


def compare(a: Estimate, b: Estimate) -> Literal["greater", "less", "overlap"]:
    """'greater' when a > b with non-overlapping intervals, 'less' when a < b likewise, else
    'overlap' (also when either has no interval: then nothing is decided)."""
    if a.interval is None or b.interval is None:
        return "overlap"
    if a.value > b.value and a.interval[0] > b.interval[1]:
        return "greater"
    if a.value < b.value and a.interval[1] < b.interval[0]:
        return "less"
    return "overlap"


def _combine(results: list[str], wanted: str, opposite: str) -> Verdict:
    """reproduced if every comparison is ``wanted``; not reproduced if any is ``opposite``."""
    if results and all(r == wanted for r in results):
        return "reproduced"
    if any(r == opposite for r in results):
        return "not reproduced"
    return "inconclusive"


def _fit(analysis: StudyAnalysis, method: str, factor: str) -> LawFit | None:
    fits = analysis.methods.get(method)
    return None if fits is None else fits.multiplicative.fits.get(factor)


def finding_1(analysis: StudyAnalysis) -> Finding:
    threshold = analysis.settings.mad_threshold
    k = analysis.settings.noise_sigmas
    evidence, states = [], []
    for method, fits in analysis.methods.items():
        sigma = analysis.checks.noise[method].sigma or 0.0
        for factor in ("model_size", "pretrain_data"):
            fit, additive = fits.multiplicative.fits.get(factor), fits.additive.fits.get(factor)
            if fit is None or fit.mad_held_out is None:
                continue
            mad = fit.mad_held_out
            states.append("ok" if mad <= threshold else "noise" if mad <= threshold + k * sigma else "bad")
            add = f"; additive {additive.mad_held_out:.4f}" if additive and additive.mad_held_out is not None else ""
            evidence.append(f"{METHOD_NAMES[method]} {factor}: held-out MAD {mad:.4f} (fit {fit.mad_fit:.4f}){add}")
    verdict: Verdict = (
        "inconclusive" if not states else "reproduced" if all(s == "ok" for s in states)
        else "not reproduced" if "bad" in states else "inconclusive"
    )
    return Finding(
        number=1, claim="The multiplicative joint law fits and extrapolates (held-out MAD ~0.002-0.026).",
        criterion=f"held-out MAD of the multiplicative law <= {threshold} (the paper's largest, 0.026, rounded up) for "
        f"every method on the model-size and pretraining-data factors; 'not reproduced' when one exceeds it by more "
        f"than {k:g} seed-noise sigmas",
        verdict=verdict, evidence=evidence or ["no held-out points were fitted"],
    )


def finding_2(analysis: StudyAnalysis) -> Finding:
    evidence, results = [], []
    for method in analysis.methods:
        fm, fp = _fit(analysis, method, "model_size"), _fit(analysis, method, "pretrain_data")
        if fm is None or fp is None:
            evidence.append(f"{METHOD_NAMES[method]}: pretraining-data axis not measured")
            results.append("missing")
            continue
        a, b = estimate(fm, "alpha", "alpha_m"), estimate(fp, "alpha", "alpha_p")
        results.append(compare(a, b))
        evidence.append(f"{METHOD_NAMES[method]}: {a}, {b} -> {results[-1]}")
    return Finding(
        number=2, claim="alpha_m > alpha_p: model scaling helps finetuning more than pretraining-data scaling.",
        criterion="for every method the interval of alpha (model size) lies above that of alpha (pretraining data)",
        verdict=_combine(results, "greater", "less"), evidence=evidence,
    )


def finding_3(analysis: StudyAnalysis) -> Finding:
    bound = analysis.settings.alpha_t_threshold
    evidence, results = [], []
    for method in PET:
        fit = _fit(analysis, method, "pet_size")
        if fit is None:
            if method in analysis.methods:
                evidence.append(f"{METHOD_NAMES[method]}: PET-size axis not measured")
                results.append("missing")
            continue
        est = estimate(fit, "alpha", "alpha_t")
        low, high = est.interval or (est.value, est.value)
        inside = -bound < low and high < bound
        outside = low >= bound or high <= -bound
        results.append("inside" if inside and est.interval else "outside" if outside else "straddles")
        evidence.append(f"{METHOD_NAMES[method]}: {est} -> {results[-1]} (-{bound:g}, {bound:g})")
    return Finding(
        number=3, claim="abs(alpha_t) << 1e-2: PET parameter scaling is ineffective.",
        criterion=f"for Prompt and LoRA the interval of alpha_t (prompt length / LoRA rank) lies inside (-{bound:g}, {bound:g}); "
        "'not reproduced' when it lies wholly outside. (The paper's remark that long prompts are unstable is not checked.)",
        verdict=_combine(results, "inside", "outside"), evidence=evidence or ["no PET method was run"],
    )


def _beta(analysis: StudyAnalysis, method: str) -> Estimate | None:
    fit = _fit(analysis, method, "model_size")
    return None if fit is None else estimate(fit, "beta", f"beta_{METHOD_NAMES[method]}")


def finding_4(analysis: StudyAnalysis) -> Finding:
    betas = {m: _beta(analysis, m) for m in ("full", "prompt", "lora")}
    evidence = [str(b) for b in betas.values() if b is not None]
    results = [compare(betas["full"], betas[m]) for m in PET if betas["full"] and betas[m]]
    verdict = _combine(results, "greater", "less") if len(results) == 2 else "inconclusive"
    if betas["lora"] and betas["prompt"]:
        evidence.append(f"also beta_LoRA vs beta_Prompt: {compare(betas['lora'], betas['prompt'])} (the paper: slightly greater)")
    return Finding(
        number=4, claim="beta(FMT) > beta(PET), beta(LoRA) slightly > beta(Prompt): FMT is the most data-hungry.",
        criterion="beta_FMT > beta_LoRA and beta_FMT > beta_Prompt (beta shared over model size and pretraining data), "
        "with non-overlapping bootstrap intervals",
        verdict=verdict, evidence=evidence,
    )


def finding_5(analysis: StudyAnalysis) -> Finding:
    evidence, results = [], []
    for method in PET:
        beta = _beta(analysis, method)
        if beta is None:
            continue
        for factor, name in (("model_size", "alpha_m"), ("pretrain_data", "alpha_p")):
            fit = _fit(analysis, method, factor)
            if fit is None:
                results.append("missing")
                continue
            alpha = estimate(fit, "alpha", name)
            results.append(compare(alpha, beta))
            evidence.append(f"{METHOD_NAMES[method]}: {alpha} vs {beta} -> {results[-1]}")
    return Finding(
        number=5, claim="PET depends more on model/pretraining scaling than on finetuning data (alpha > beta for PET).",
        criterion="for Prompt and LoRA, alpha_m > beta and alpha_p > beta with non-overlapping intervals",
        verdict=_combine(results, "greater", "less") if results else "inconclusive",
        evidence=evidence or ["no PET method was fitted"],
    )


def _gap_tolerance(analysis: StudyAnalysis, a: str, b: str) -> float | None:
    sigmas = [analysis.checks.noise[m].sigma for m in (a, b) if m in analysis.checks.noise]
    if len(sigmas) < 2 or None in sigmas:
        return None
    return analysis.settings.noise_sigmas * math.sqrt(sigmas[0] ** 2 + sigmas[1] ** 2)


def finding_6(analysis: StudyAnalysis) -> Finding:
    rows = analysis.checks.best_method
    evidence, states = [], []
    for model in dict.fromkeys(r.model for r in rows):
        mine = sorted((r for r in rows if r.model == model), key=lambda r: r.data_size)
        small, large = mine[0], mine[-1]
        pet_small = min(PET, key=lambda m: small.losses.get(m, math.inf))
        pet_large = min(PET, key=lambda m: large.losses.get(m, math.inf))
        gap_small = small.losses["full"] - small.losses[pet_small]  # > 0: PET better at small Df
        gap_large = large.losses[pet_large] - large.losses["full"]  # > 0: FMT better at large Df
        tol_s, tol_l = _gap_tolerance(analysis, "full", pet_small), _gap_tolerance(analysis, "full", pet_large)
        agree = gap_small > (tol_s or 0) and gap_large > (tol_l or 0)
        contra = gap_small < -(tol_s or 0) or gap_large < -(tol_l or 0)
        states.append("agree" if agree else "contra" if contra else "unclear")
        evidence.append(
            f"{model}: Df={small.data_size}: FMT - best PET ({METHOD_NAMES[pet_small]}) = {gap_small:+.4f}; "
            f"Df={large.data_size}: best PET ({METHOD_NAMES[pet_large]}) - FMT = {gap_large:+.4f} -> {states[-1]}"
        )
    for c in analysis.checks.critical:
        if "full" in c.methods:
            shown = "no crossing" if c.data_size is None else f"{c.data_size:.3g} examples"
            evidence.append(f"fitted critical Df {METHOD_NAMES[c.methods[0]]} vs {METHOD_NAMES[c.methods[1]]} at {c.model}: {shown}")
    verdict: Verdict = ("inconclusive" if not states else "reproduced" if all(s == "agree" for s in states)
                        else "not reproduced" if "contra" in states else "inconclusive")
    return Finding(
        number=6, claim="The critical data size between methods is task-dependent; few thousand examples -> PET, "
        "a bit more -> LoRA, millions -> FMT.",
        criterion="at every model size a PET method has lower measured test loss than FMT at the smallest Df and FMT "
        "lower than both PET methods at the largest Df, each by more than the seed-noise allowance (one task here, so "
        "task dependence is not tested)",
        verdict=verdict, evidence=evidence or ["the methods share no model-size settings"],
    )


def finding_7(analysis: StudyAnalysis) -> Finding:
    scores = {(z.method, z.model): z for z in analysis.checks.zero_shot}
    models = list(dict.fromkeys(z.model for z in analysis.checks.zero_shot))
    if not models or not all((m, models[-1]) in scores for m in ("full", *PET)):
        return Finding(number=7, claim="PET generalizes better zero-shot than FMT, especially for large models.",
                       criterion="zero-shot scores of every method at the largest model", verdict="inconclusive",
                       evidence=["zero-shot scores were not measured for every method"])
    small, large = models[0], models[-1]
    k = analysis.settings.noise_sigmas
    evidence, states = [], []
    for method in PET:
        gap_large = scores[(method, large)].score - scores[("full", large)].score
        gap_small = scores[(method, small)].score - scores[("full", small)].score
        sig = [analysis.checks.noise[m].zero_shot_sigma for m in (method, "full")]
        n = len(scores[("full", large)].by_data_size)
        tol = None if None in sig else k * math.sqrt((sig[0] ** 2 + sig[1] ** 2) / n)
        better = gap_large > (tol or 0) and gap_large > gap_small
        worse = gap_large < -(tol or 0)
        states.append("agree" if better else "contra" if worse else "unclear")
        shown = "unknown" if tol is None else f"{tol:.2f}"
        evidence.append(f"{METHOD_NAMES[method]} - FMT zero-shot chrF: {gap_large:+.2f} at {large}, {gap_small:+.2f} at "
                        f"{small} (noise allowance {shown}) -> {states[-1]}")
    verdict: Verdict = ("reproduced" if all(s == "agree" for s in states)
                        else "not reproduced" if "contra" in states else "inconclusive")
    return Finding(
        number=7, claim="PET generalizes better zero-shot than FMT, especially for large models.",
        criterion="zero-shot chrF (sister language qac -> qab, mean over the finetuning data sizes): at the largest model "
        "Prompt and LoRA both above FMT by more than the seed-noise allowance, with a larger gap than at the smallest model",
        verdict=verdict, evidence=evidence,
    )


FINDINGS = (finding_1, finding_2, finding_3, finding_4, finding_5, finding_6, finding_7)


def check_findings(analysis: StudyAnalysis) -> list[Finding]:
    """Return the verdict on each of the paper's seven findings."""
    return [check(analysis) for check in FINDINGS]


def findings_table(findings: list[Finding]) -> str:
    """Return a markdown table: number, the paper's finding, verdict."""
    lines = ["| # | the paper's finding | verdict here |", "|---|---|---|"]
    lines += [f"| {f.number} | {f.claim} | **{f.verdict}** |" for f in findings]
    return "\n".join(lines)


def findings_markdown(findings: list[Finding], title: str = "Findings") -> str:
    """Return findings.md: the table, then each finding's criterion and evidence."""
    parts = [f"# {title}", "", findings_table(findings), ""]
    for f in findings:
        parts += [f"## {f.number}. {f.claim}", "", f"Criterion: {f.criterion}.", "", f"Verdict: **{f.verdict}**.", ""]
        parts += [f"- {line}" for line in f.evidence] + [""]
    return "\n".join(parts)
