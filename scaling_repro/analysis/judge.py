"""The seven findings for every task of a results directory: the code path of ``scaling-repro
findings``, ``report`` and ``reproduce`` alike.

Each task's runs are fitted (:func:`scaling_repro.analysis.reproduction.analyse`) and judged
(:func:`scaling_repro.analysis.findings.check_findings`); a task whose runs do not make the
model-size experiment every finding starts from is skipped with the reason. Torch-free.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scaling_repro.analysis.experiments import Missing
from scaling_repro.analysis.findings import check_findings, findings_markdown, verdict_text
from scaling_repro.analysis.fitted_results import FittedResults
from scaling_repro.analysis.reproduction import analyse
from scaling_repro.analysis.verdicts import Finding
from scaling_repro.config.analysis_settings import AnalysisSettings
from scaling_repro.errors import UserError
from scaling_repro.fileio import atomic_write_text


@dataclass(frozen=True)
class TaskFindings:
    """The verdicts on one task, or why it was not judged."""

    task: str
    runs: int
    findings: list[Finding] = field(default_factory=list)
    skipped: str | None = None  # why the task was not judged


def judge_task(fitted: FittedResults, task: str, settings: AnalysisSettings) -> TaskFindings:
    """Return the seven verdicts on ``task``'s runs of ``fitted`` (skipped, with the reason, when they
    cannot be fitted)."""
    records = [r for r in fitted.records if r.task == task]
    one_task = FittedResults(records, holdout=fitted.holdout, experiments=fitted.names, source=fitted.source)
    try:
        analysis = analyse(one_task, settings)
    except (UserError, Missing) as err:
        return TaskFindings(task, len(records), skipped=str(err))
    return TaskFindings(task, len(records), check_findings(analysis))


def judge_results(fitted: FittedResults, settings: AnalysisSettings, task: str | None = None) -> list[TaskFindings]:
    """Return the verdicts on every task of ``fitted`` (or on ``task`` only)."""
    return [judge_task(fitted, t, settings) for t in fitted.check_task(task)]


def findings_json(judged: Sequence[TaskFindings]) -> list[dict]:
    """Return what ``findings --json`` writes: one object per task and finding (task, finding, verdict,
    parts, reason, criterion, numbers); a skipped task gives one object with finding null."""
    out: list[dict] = []
    for item in judged:
        if item.skipped:
            out.append({"task": item.task, "finding": None, "verdict": "not testable", "reason": item.skipped})
        out += [{"task": item.task, **f.summary()} for f in item.findings]
    return out


def write_findings_json(path: str | Path, judged: Sequence[TaskFindings]) -> Path:
    """Write :func:`findings_json` to ``path`` atomically; return the path."""
    atomic_write_text(path, json.dumps(findings_json(judged), indent=1) + "\n")
    return Path(path)


def findings_table_text(judged: Sequence[TaskFindings], width: int = 100) -> str:
    """Return the verdicts as a plain-text table: task, finding, verdict, the reason cut to ``width``."""
    rows = [("task", "#", "verdict", "why")]
    for item in judged:
        if item.skipped:
            rows.append((item.task, "-", "not judged", item.skipped))
        rows += [(item.task, str(f.number), verdict_text(f), f.reason) for f in item.findings]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for row in rows:
        why = row[3] if len(row[3]) <= width else row[3][: width - 3] + "..."
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + why)
    return "\n".join(lines)


def judged_markdown(judged: Sequence[TaskFindings], title: str = "Findings") -> str:
    """Return findings.md for several tasks: each task's table, criteria and evidence."""
    if len(judged) == 1 and not judged[0].skipped:
        return findings_markdown(judged[0].findings, f"{title}: {judged[0].task}")
    parts = [f"# {title}", ""]
    for item in judged:
        if item.skipped:
            parts += [f"# {item.task}", "", f"Not judged: {item.skipped}", ""]
        else:
            parts += ["#" + findings_markdown(item.findings, item.task), ""]
    return "\n".join(parts)
