"""The paper's seven findings, each checked against a study's fitted numbers and measured losses.

Every finding has a criterion stated in numbers (``Finding.criterion``, also printed in
findings.md) and a verdict that follows from the numbers only:

- **reproduced**: the criterion holds; where it compares fitted quantities, the paired bootstrap
  difference is on the paper's side at ``analysis.settings.level`` (e.g. 90%:
  :mod:`scaling_repro.analysis.paired`);
- **not reproduced**: the opposite holds at the same level (or a measured difference beyond the
  seed-noise allowance);
- **inconclusive**: the uncertainty covers both, or a law the finding reads fails finding 1's fit
  test (then the evidence says so);
- **not testable**: the study did not measure the axis the finding needs.

Findings 2, 4 and 5 read fitted exponents, so they count only laws that pass finding 1's fit test
(held-out MAD within the threshold). Finding 6 is :mod:`scaling_repro.analysis.findings_critical`.
"""

from __future__ import annotations

import math
from typing import Literal

from scaling_repro.analysis import paired
from scaling_repro.analysis.experiments import METHOD_NAMES
from scaling_repro.analysis.findings_critical import finding_6
from scaling_repro.analysis.reproduction import StudyAnalysis
from scaling_repro.analysis.verdicts import VERDICTS, Finding, Verdict, combine, judge
from scaling_repro.config.recipe import METHODS, PET_METHODS
from scaling_repro.fit import LawFit

__all__ = ["FINDINGS", "VERDICTS", "Finding", "Verdict", "check_findings", "findings_markdown", "findings_table"]


def _fit(analysis: StudyAnalysis, method: str, factor: str) -> LawFit | None:
    fits = analysis.methods.get(method)
    return None if fits is None else fits.multiplicative.fits.get(factor)


def _holdout(fit: LawFit) -> str:
    return fit.labels.get("holdout", "unknown rule")


def fit_test(analysis: StudyAnalysis, method: str, fit: LawFit) -> Literal["ok", "noise", "bad", "untested"]:
    """Return finding 1's test of one fit of ``method``: 'ok' (held-out MAD <= threshold), 'noise' (within
    ``noise_sigmas`` seed sigmas above it), 'bad' (beyond), 'untested' (no held-out points)."""
    if fit.mad_held_out is None:
        return "untested"
    noise = analysis.checks.noise.get(method)
    sigma = (noise.sigma if noise else None) or 0.0
    threshold = analysis.settings.mad_threshold
    if fit.mad_held_out <= threshold:
        return "ok"
    return "noise" if fit.mad_held_out <= threshold + analysis.settings.noise_sigmas * sigma else "bad"


def gate(analysis: StudyAnalysis, method: str, factors: tuple[str, ...]) -> str | None:
    """Return why the laws of ``method`` on ``factors`` do not pass finding 1's fit test, or None
    when they all pass."""
    reasons = []
    for factor in factors:
        fit = _fit(analysis, method, factor)
        if fit is None:
            continue
        state = fit_test(analysis, method, fit)
        if state == "untested":
            reasons.append(f"{factor} law has no held-out points ({_holdout(fit)})")
        elif state != "ok":
            reasons.append(
                f"{factor} law fails the fit test (held-out MAD {fit.mad_held_out:.4f} > "
                f"{analysis.settings.mad_threshold:g}, held out: {_holdout(fit)})"
            )
    return "; ".join(reasons) or None


def _joint_factors(analysis: StudyAnalysis, method: str) -> tuple[str, ...]:
    """The factors the shared beta and E were estimated over."""
    return tuple(analysis.methods[method].multiplicative.shared_over)


def finding_1(analysis: StudyAnalysis) -> Finding:
    """Return finding 1: the multiplicative law's held-out MAD against the threshold, per method and factor."""
    threshold = analysis.settings.mad_threshold
    k = analysis.settings.noise_sigmas
    evidence, states = [], []
    for method, fits in analysis.methods.items():
        for factor in ("model_size", "pretrain_data"):
            fit, additive = fits.multiplicative.fits.get(factor), fits.additive.fits.get(factor)
            if fit is None or fit.mad_held_out is None:
                continue
            state = fit_test(analysis, method, fit)
            states.append({"ok": "agree", "noise": "unclear", "bad": "contra"}[state])
            add = f"; additive {additive.mad_held_out:.4f}" if additive and additive.mad_held_out is not None else ""
            evidence.append(
                f"{METHOD_NAMES[method]} {factor}: held-out MAD {fit.mad_held_out:.4f} (fit {fit.mad_fit:.4f}; "
                f"held out: {_holdout(fit)}){add}"
            )
    verdict = combine(states) if states else "inconclusive"
    return Finding(
        number=1,
        claim="The multiplicative joint law fits and extrapolates (held-out MAD ~0.002-0.026).",
        criterion=f"held-out MAD of the multiplicative law <= {threshold} (the paper's largest, 0.026, rounded up) for "
        f"every method on the model-size and pretraining-data factors; 'not reproduced' when one exceeds it by more "
        f"than {k:g} seed-noise sigmas",
        verdict=verdict,
        evidence=evidence or ["no held-out points were fitted"],
    )


def finding_2(analysis: StudyAnalysis) -> Finding:
    """Return finding 2: alpha_m - alpha_p > 0 per method, on paired replicates of laws that pass the fit test."""
    level = analysis.settings.level
    evidence, states = [], []
    for method in analysis.methods:
        name = METHOD_NAMES[method]
        fm, fp = _fit(analysis, method, "model_size"), _fit(analysis, method, "pretrain_data")
        if fm is None or fp is None:
            evidence.append(f"{name}: pretraining-data axis not measured")
            states.append("missing")
            continue
        why = gate(analysis, method, ("model_size", "pretrain_data"))
        if why:
            evidence.append(f"{name}: not counted: {why}")
            states.append("unclear")
            continue
        a, b = paired.replicates(fm, "alpha"), paired.replicates(fp, "alpha")
        states.append(judge(paired.decide(a, b, level), "greater"))
        diff = fm.params["alpha"] - fp.params["alpha"]
        evidence.append(
            f"{name}: alpha_m = {fm.params['alpha']:.4g}, alpha_p = {fp.params['alpha']:.4g}; "
            f"{paired.describe('alpha_m - alpha_p', diff, a, b, level)} -> {states[-1]}"
        )
    return Finding(
        number=2,
        claim="alpha_m > alpha_p: model scaling helps finetuning more than pretraining-data scaling.",
        criterion=f"for every method alpha_m - alpha_p > 0 at the {level:.0%} level of its paired bootstrap "
        "difference (same replicates of the joint fit), counting only laws that pass finding 1's fit test",
        verdict=combine(states),
        evidence=evidence,
    )


def finding_3(analysis: StudyAnalysis) -> Finding:
    """Return finding 3: the bootstrap interval of alpha_t inside (-threshold, threshold) for Prompt and LoRA."""
    bound = analysis.settings.alpha_t_threshold
    level = analysis.settings.level
    evidence, states = [], []
    for method in PET_METHODS:
        if method not in analysis.methods:
            continue
        name = METHOD_NAMES[method]
        fit = _fit(analysis, method, "pet_size")
        if fit is None:
            evidence.append(f"{name}: PET-size axis not measured")
            states.append("missing")
            continue
        reps = paired.replicates(fit, "alpha")
        if reps is None:
            states.append("unclear")
            evidence.append(f"{name}: alpha_t = {fit.params['alpha']:.4g} (no bootstrap replicates) -> unclear")
            continue
        low, high = paired.interval(reps, level)
        inside, outside = -bound < low and high < bound, low >= bound or high <= -bound
        states.append("agree" if inside else "contra" if outside else "unclear")
        evidence.append(
            f"{name}: alpha_t = {fit.params['alpha']:.4g} [{low:.4g}, {high:.4g}] ({level:.0%}, {len(reps)} "
            f"replicates) vs (-{bound:g}, {bound:g}) -> {states[-1]}"
        )
    return Finding(
        number=3,
        claim="abs(alpha_t) << 1e-2: PET parameter scaling is ineffective.",
        criterion=f"for Prompt and LoRA the {level:.0%} bootstrap interval of alpha_t (prompt length / LoRA rank) lies "
        f"inside (-{bound:g}, {bound:g}); 'not reproduced' when it lies wholly outside. (The paper's remark that long "
        "prompts are unstable is not checked.)",
        verdict=combine(states),
        evidence=evidence or ["no PET method was run"],
    )


def finding_4(analysis: StudyAnalysis) -> Finding:
    """Return finding 4: beta_FMT - beta_PET > 0 on paired replicates of joint laws that pass the fit test."""
    level = analysis.settings.level
    fits = {m: _fit(analysis, m, "model_size") for m in METHODS}
    betas = {m: paired.replicates(f, "beta") for m, f in fits.items()}
    evidence = [f"beta_{METHOD_NAMES[m]} = {f.params['beta']:.4g}" for m, f in fits.items() if f is not None]
    states = []
    for method in PET_METHODS:
        full, pet = fits["full"], fits[method]
        if full is None or pet is None:
            states.append("missing")
            continue
        name = f"beta_FMT - beta_{METHOD_NAMES[method]}"
        why = "; ".join(filter(None, (gate(analysis, m, _joint_factors(analysis, m)) for m in ("full", method))))
        if why:
            states.append("unclear")
            evidence.append(f"{name}: not counted: {why}")
            continue
        states.append(judge(paired.decide(betas["full"], betas[method], level), "greater"))
        diff = full.params["beta"] - pet.params["beta"]
        evidence.append(f"{paired.describe(name, diff, betas['full'], betas[method], level)} -> {states[-1]}")
    if fits["lora"] is not None and fits["prompt"] is not None:
        diff = fits["lora"].params["beta"] - fits["prompt"].params["beta"]
        order = paired.decide(betas["lora"], betas["prompt"], level)
        evidence.append(
            f"also {paired.describe('beta_LoRA - beta_Prompt', diff, betas['lora'], betas['prompt'], level)}"
            f" -> {order} (the paper: slightly greater; not part of the verdict)"
        )
    return Finding(
        number=4,
        claim="beta(FMT) > beta(PET), beta(LoRA) slightly > beta(Prompt): FMT is the most data-hungry.",
        criterion=f"beta_FMT - beta_LoRA > 0 and beta_FMT - beta_Prompt > 0 (beta shared over model size and "
        f"pretraining data) at the {level:.0%} level of the paired bootstrap difference, counting only methods whose "
        "joint laws pass finding 1's fit test",
        verdict=combine(states),
        evidence=evidence,
    )


def finding_5(analysis: StudyAnalysis) -> Finding:
    """Return finding 5: alpha - beta > 0 for the PET methods on paired replicates of laws that pass the fit test."""
    level = analysis.settings.level
    evidence, states = [], []
    for method in PET_METHODS:
        beta_fit = _fit(analysis, method, "model_size")
        if beta_fit is None:
            continue
        beta = paired.replicates(beta_fit, "beta")
        for factor, symbol in (("model_size", "alpha_m"), ("pretrain_data", "alpha_p")):
            fit = _fit(analysis, method, factor)
            label = f"{METHOD_NAMES[method]} {symbol} - beta"
            if fit is None:
                states.append("missing")
                evidence.append(f"{label}: {factor} axis not measured")
                continue
            why = gate(analysis, method, (factor, *_joint_factors(analysis, method)))
            if why:
                states.append("unclear")
                evidence.append(f"{label}: not counted: {why}")
                continue
            alpha = paired.replicates(fit, "alpha")
            states.append(judge(paired.decide(alpha, beta, level), "greater"))
            diff = fit.params["alpha"] - fit.params["beta"]
            evidence.append(f"{paired.describe(label, diff, alpha, beta, level)} -> {states[-1]}")
    return Finding(
        number=5,
        claim="PET depends more on model/pretraining scaling than on finetuning data (alpha > beta for PET).",
        criterion=f"for Prompt and LoRA, alpha_m - beta > 0 and alpha_p - beta > 0 at the {level:.0%} level of the "
        "paired bootstrap difference (same replicates of the joint fit), counting only laws that pass finding 1's "
        "fit test",
        verdict=combine(states),
        evidence=evidence or ["no PET method was fitted"],
    )


ZERO_SHOT_CLAIM = "PET generalizes better zero-shot than FMT, especially for large models."


def finding_7(analysis: StudyAnalysis) -> Finding:
    """Return finding 7: PET better than FMT zero-shot at the largest model (test loss where measured, else chrF)."""
    entries = analysis.checks.zero_shot
    metric = "loss" if any(z.metric == "loss" for z in entries) else "chrf"
    scores = {(z.method, z.model): z for z in entries if z.metric == metric}
    models = list(dict.fromkeys(z.model for z in entries if z.metric == metric))
    if not models or not all((m, models[-1]) in scores for m in METHODS):
        return Finding(
            number=7,
            claim=ZERO_SHOT_CLAIM,
            criterion="zero-shot scores of every method at the largest model",
            verdict="not testable",
            evidence=["zero-shot scores were not measured for every method"],
        )
    small, large = models[0], models[-1]
    sign = -1.0 if metric == "loss" else 1.0  # gap > 0: the PET method generalizes better
    k = analysis.settings.noise_sigmas
    evidence, states = [], []
    if metric == "chrf":
        evidence.append(
            "the records have no zero-shot test loss (the evaluator scores the zero-shot directions by "
            "generation only), so chrF is used; its per-run sigma is large"
        )
    for method in PET_METHODS:
        a, f = scores[(method, large)], scores[("full", large)]
        gap_large = sign * (a.score - f.score)
        gap_small = sign * (scores[(method, small)].score - scores[("full", small)].score)
        sig_a, sig_f = (
            analysis.checks.noise[m].zero_shot_sigmas.get(metric) if m in analysis.checks.noise else None
            for m in (method, "full")
        )
        tol = (
            None
            if sig_a is None or sig_f is None
            else k * math.sqrt(sig_a**2 / max(a.runs, 1) + sig_f**2 / max(f.runs, 1))
        )
        better = gap_large > (tol or 0) and gap_large > gap_small
        states.append("agree" if better else "contra" if gap_large < -(tol or 0) else "unclear")
        allowance = "unknown" if tol is None else f"{tol:.3g}"
        evidence.append(
            f"{METHOD_NAMES[method]} better than FMT by zero-shot {metric}: {gap_large:+.3g} at {large}, "
            f"{gap_small:+.3g} at {small} (noise allowance {allowance}) -> {states[-1]}"
        )
    what = "zero-shot test loss (teacher-forced, all test pairs)" if metric == "loss" else "zero-shot chrF"
    return Finding(
        number=7,
        claim=ZERO_SHOT_CLAIM,
        criterion=f"{what}, mean over the finetuning data sizes: at the largest model Prompt and LoRA both better than "
        "FMT by more than the seed-noise allowance (k sigma of the difference of means), with a larger gap than at "
        "the smallest model",
        verdict=combine(states),
        evidence=evidence,
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
