"""The report of a reproduction, in ``report/``:

- ``findings.md``: the seven findings, criteria, verdicts and numbers (:mod:`scaling_repro.analysis.findings`);
- ``summary.md``: Table 4- and Table 2-style tables with bootstrap intervals, the measured checks
  (seed noise, curves, largest model, critical data sizes, zero-shot) and the stage timings;
- ``analysis.json``: every fit and check;
- ``index.md``, ``figures/``, ``tables/``, ``fits.json``: the paper's figures and tables drawn by
  :func:`scaling_repro.report.build_report` from the same fits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from scaling_repro.analysis.experiments import FACTOR_NAMES, METHOD_NAMES
from scaling_repro.analysis.findings import Finding, findings_markdown, findings_table
from scaling_repro.analysis.numbers import sci
from scaling_repro.analysis.reproduction import StudyAnalysis
from scaling_repro.fileio import atomic_write_text

log = logging.getLogger(__name__)


AT_BOUND = 1e-12  # A and E are fitted as coefficients >= 0: at or below this they sit at the bound


def _bounded(value: float, param: str) -> str:
    return "at bound (0)" if param in ("A", "E") and value <= AT_BOUND else sci(value, 1)


def _interval(fit, param: str) -> str:
    """Return 'value [low, high]'; a coefficient at its lower bound 0 reads 'at bound', not [0, 0]."""
    value = fit.params.get(param)
    shown = "at bound (0)" if param in ("A", "E") and value is not None and value <= AT_BOUND else sci(value)
    if fit.bootstrap and param in fit.bootstrap.intervals:
        low, high = fit.bootstrap.intervals[param]
        if param in ("A", "E") and high <= AT_BOUND:
            return f"{shown} (in every replicate)"
        return f"{shown} [{_bounded(low, param)}, {_bounded(high, param)}]"
    return shown


def table4(analysis: StudyAnalysis) -> str:
    """Table 4 style: multiplicative-law parameters per method and factor (90% intervals)."""
    methods = list(analysis.methods)
    rows = ["| parameter | " + " | ".join(METHOD_NAMES[m] for m in methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for factor, suffix in (("model_size", "m"), ("pretrain_data", "p"), ("pet_size", "t")):
        for param in ("A", "alpha"):
            cells = []
            for method in methods:
                fit = analysis.methods[method].multiplicative.fits.get(factor)
                cells.append("-" if fit is None else _interval(fit, param))
            rows.append(f"| {param}_{suffix} | " + " | ".join(cells) + " |")
    for param in ("E", "beta"):
        cells = [_interval(analysis.methods[m].multiplicative.fits["model_size"], param) for m in methods]
        rows.append(f"| {param} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def table2(analysis: StudyAnalysis) -> str:
    """Table 2 style: held-out MAD of the multiplicative vs additive law, with the held-out rule."""
    rows = [
        "| factor | law | held out | " + " | ".join(METHOD_NAMES[m] for m in analysis.methods) + " | avg |",
        "|---|---|---|" + "---|" * (len(analysis.methods) + 1),
    ]
    for factor, factor_name in FACTOR_NAMES.items():
        for law in ("multiplicative", "additive"):
            values: list[float | None] = []
            rules: dict[str, None] = {}  # insertion-ordered set of the held-out rules
            for fits in analysis.methods.values():
                fit = getattr(fits, law).fits.get(factor)
                values.append(None if fit is None else fit.mad_held_out)
                if fit is not None:
                    rules[fit.labels.get("holdout", "unknown")] = None
            if all(v is None for v in values):
                continue
            known = [v for v in values if v is not None]
            cells = [sci(v, 1) for v in values] + [sci(sum(known) / len(known), 2)]
            rows.append(f"| {factor_name} | {law} | {', '.join(rules)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def checks_section(analysis: StudyAnalysis) -> str:
    """The measured checks: seed noise, data-scaling curves, largest model, critical sizes."""
    c = analysis.checks
    k = analysis.settings.noise_sigmas
    lines = [
        "## Seed noise",
        "",
        "| method | sigma (test loss, one run) | settings x seeds | zero-shot chrF sigma |",
        "|---|---|---|---|",
    ]
    for n in c.noise.values():
        lines.append(
            f"| {METHOD_NAMES[n.method]} | {sci(n.sigma, 1)} | {n.settings} settings, {n.runs} runs "
            f"| {sci(n.zero_shot_sigma, 1)} |"
        )
    lines += [
        "",
        f"## Test loss vs finetuning data (model-size experiment; tolerance {k:g} sigma)",
        "",
        "| method | model | " + "losses by Df | verdict |",
        "|---|---|---|---|",
    ]
    for cc in c.curves:
        losses = ", ".join(f"{df}: {loss:.3f}" for df, loss in zip(cc.data_sizes, cc.losses))
        lines.append(f"| {METHOD_NAMES[cc.method]} | {cc.model} | {losses} | {cc.verdict} |")
    lines += [
        "",
        "## Is the largest model the best?",
        "",
        "| method | Df | largest | runner-up | verdict |",
        "|---|---|---|---|---|",
    ]
    for lc in c.largest:
        lines.append(
            f"| {METHOD_NAMES[lc.method]} | {lc.data_size} | {lc.largest} {lc.largest_loss:.3f} | "
            f"{lc.runner_up} {lc.runner_up_loss:.3f} | {lc.verdict} |"
        )
    models = list(dict.fromkeys(x.model for x in c.critical))
    lines += [
        "",
        "## Critical finetuning data size (fitted model-size laws, Fig. 5 / Table 5)",
        "",
        "Tie point at a model: the Df where the two methods' fitted losses are equal (L1 = L2; Fig. 5). "
        "H, gamma: Eq. 3's closed form Df = H * X^gamma of the Df where the gap L1 - L2 equals E1 - E2 "
        "(Table 5), a different point unless E1 = E2.",
        "",
        "| methods | "
        + " | ".join(f"tie point {m}" for m in models)
        + " | H (gap = E1 - E2) | gamma (gap = E1 - E2) |",
        "|---" * (len(models) + 3) + "|",
    ]
    for power in c.critical_power:
        sizes = [x for x in c.critical if x.methods == power.methods]
        cells = ["no crossing" if x.data_size is None else sci(x.data_size) for x in sizes]
        names = " vs ".join(METHOD_NAMES[m] for m in power.methods)
        lines.append(f"| {names} | " + " | ".join(cells) + f" | {sci(power.H)} | {sci(power.gamma)} |")
    for metric, title, digits in (("loss", "test loss (teacher-forced)", 3), ("chrf", "chrF", 1)):
        rows = [z for z in c.zero_shot if z.metric == metric]
        if not rows:
            continue
        zero_models = list(dict.fromkeys(z.model for z in rows))
        lines += [
            "",
            f"## Zero-shot {title} after finetuning (mean over directions and Df)",
            "",
            "| method | " + " | ".join(zero_models) + " |",
            "|---" * (1 + len(zero_models)) + "|",
        ]
        for method in dict.fromkeys(z.method for z in rows):
            cells = [f"{z.score:.{digits}f}" for z in rows if z.method == method]
            lines.append(f"| {METHOD_NAMES[method]} | " + " | ".join(cells) + " |")
    if c.convergence:
        lines += [
            "",
            "## Convergence (best dev checkpoint before the last step; every finetuned run)",
            "",
            "| method | converged / runs | not converged |",
            "|---|---|---|",
        ]
        for cv in c.convergence:
            late = ", ".join(cv.not_converged[:12]) + (
                f", ... ({len(cv.not_converged)} in all)" if len(cv.not_converged) > 12 else ""
            )
            lines.append(f"| {METHOD_NAMES[cv.method]} | {cv.converged} / {cv.runs} | {late or '-'} |")
    return "\n".join(lines)


def summary_markdown(analysis: StudyAnalysis, findings: list[Finding], header: Sequence[str] = ()) -> str:
    """Return summary.md: run facts, findings table, Tables 4 and 2, and the checks."""
    level = f"{analysis.settings.level:.0%}"
    parts = [
        "# Tiny reproduction: summary",
        "",
        *header,
        "",
        "## Findings",
        "",
        findings_table(findings),
        "",
        f"## Fitted multiplicative law (Table 4 style; {level} bootstrap intervals, "
        f"{analysis.settings.bootstrap} resamples of points)",
        "",
        "X in parameters (non-embedding), tokens, prompt tokens / LoRA rank; Df in examples; "
        "loss in nats per target token.",
        "",
        table4(analysis),
        "",
        "## Held-out MAD, multiplicative vs additive (Table 2 style)",
        "",
        table2(analysis),
        "",
        checks_section(analysis),
        "",
    ]
    return "\n".join(parts)


FIGURE_FORMATS = ("png",)  # `scaling-repro report` draws PDFs too


def write_figures(fitted, runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw the paper's figures and tables (figures stage: index.md, figures/, tables/, fits.json)
    from ``fitted`` (a :class:`scaling_repro.analysis.FittedResults`, or None to read ``runs_dir``)."""
    from scaling_repro.report import build_report

    report = build_report(runs_dir, out_dir, fitted=fitted, formats=FIGURE_FORMATS)
    files = [p for figure in report.figures for p in figure.files]
    return [report.index, *files, *([report.fits] if report.fits else [])]


def write_report(
    analysis: StudyAnalysis, findings: list[Finding], out_dir: Path, header: Sequence[str] = ()
) -> list[Path]:
    """Write analysis.json, summary.md and findings.md into ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [analysis.save(out_dir / "analysis.json")]
    summary, found = out_dir / "summary.md", out_dir / "findings.md"
    atomic_write_text(summary, summary_markdown(analysis, findings, header))
    atomic_write_text(found, findings_markdown(findings, "Findings of the tiny reproduction") + "\n")
    return [*paths, summary, found]
