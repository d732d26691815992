"""``build_report``: every figure and table a results directory supports, in one directory.

    report/
      index.md          the report: experiments found, figures (embedded PNGs), tables, what is missing
      figures/          figureNN_<task>.png and .pdf (figure10.png/.pdf: all tasks)
      tables/           tableNN.md and tableNN.csv
      fits.json         every joint fit (multiplicative and additive), readable with
                        scaling_repro.fit.record.load_fits
      findings.md       the paper's seven findings judged per task (when asked for: ``findings=``)

Figures and tables that the runs cannot support are listed in ``index.md`` with the runs that
are missing for them; everything else is drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from scaling_repro.analysis.experiments import (
    FACTOR_FIELDS,
    FACTOR_NAMES,
    METHOD_NAMES,
    Missing,
)
from scaling_repro.analysis.fitted_results import DEFAULT_HOLDOUT, FittedResults
from scaling_repro.analysis.numbers import human
from scaling_repro.config.analysis_settings import AnalysisSettings
from scaling_repro.figures.registry import (
    FIGURES,
    FigureOptions,
    FigureResult,
    render_figure,
)
from scaling_repro.figures.tables import TABLES, make_table
from scaling_repro.figures.tabular import Table, markdown_table
from scaling_repro.fileio import atomic_write_text
from scaling_repro.fit.record import save_fits

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What :func:`build_report` wrote."""

    out_dir: Path
    index: Path
    figures: list[FigureResult]
    tables: list[Table]
    fits: Path | None = None
    findings: Path | None = None

    @property
    def missing(self) -> dict[str, list[str]]:
        """Return 'Figure N' / 'Table N' -> what could not be drawn or computed (non-empty only)."""
        out = {f"Figure {f.number}": f.notes for f in self.figures if f.notes}
        out.update({f"Table {t.number}": t.notes for t in self.tables if t.notes})
        return out


def _experiments_section(fitted: FittedResults) -> str:
    rows = []
    for task in fitted.tasks:
        for method in fitted.methods(task):
            for factor in FACTOR_FIELDS:
                try:
                    exp = fitted.experiment(task, method, factor)
                except Missing:
                    continue
                fixed = ", ".join(f"{k}={human(v) if isinstance(v, (int, float)) else v}" for k, v in exp.fixed.items())
                xs = ", ".join(f"{x:g}" if factor == "pet_size" else human(x) for x in exp.x_values)
                rows.append(
                    [
                        task,
                        METHOD_NAMES[method],
                        FACTOR_NAMES[factor],
                        str(len(exp.records)),
                        xs,
                        f"{human(exp.df_values[0])}-{human(exp.df_values[-1])} ({len(exp.df_values)})",
                        fixed,
                        exp.holdout_rule(fitted.holdout),
                    ]
                )
    if not rows:
        return "No scaling experiment found (every figure needs runs that vary one factor and the finetuning data)."
    header = ["task", "method", "factor", "runs", "x values", "Df range (values)", "fixed", "held out"]
    baselines = {t: len(fitted.baselines(t)) for t in fitted.tasks}
    extra = ", ".join(f"{t}: {n}" for t, n in baselines.items())
    return markdown_table(header, rows) + f"\n\nUn-finetuned Baseline runs (train.max_steps=0): {extra}."


def _figure_section(result: FigureResult, out_dir: Path) -> str:
    parts = [f"### Figure {result.number}: {result.title}"]
    for image in result.images:
        rel = image.relative_to(out_dir).as_posix()
        pdf = image.with_suffix(".pdf")
        link = f" ([PDF]({pdf.relative_to(out_dir).as_posix()}))" if pdf.exists() else ""
        parts.append(f"![Figure {result.number}, {image.stem}]({rel}){link}")
    if not result.drawn:
        parts.append("**Not drawn.**")
    if result.notes:
        parts.append("Missing:\n" + "\n".join(f"- {n}" for n in result.notes))
    return "\n\n".join(parts)


def _table_section(table: Table, out_dir: Path, paths: Sequence[Path]) -> str:
    links = " ".join(f"[{p.suffix[1:].upper()}]({p.relative_to(out_dir).as_posix()})" for p in paths)
    return table.to_markdown(level=3).rstrip() + (f"\n\nFiles: {links}" if links else "")


def build_report(
    results_dir: str | Path,
    out_dir: str | Path,
    *,
    task: str | None = None,
    compare_paper: bool = True,
    metric: str | None = None,
    holdout: str = DEFAULT_HOLDOUT,
    experiments: Mapping[str, Sequence[str]] | None = None,
    figures: Sequence[int] | None = None,
    tables: Sequence[int] | None = None,
    dpi: int = 200,
    formats: Sequence[str] = ("png", "pdf"),
    fitted: FittedResults | None = None,
    findings: AnalysisSettings | None = None,
) -> Report:
    """Draw every figure and table the results support into ``out_dir`` and return the Report.

    ``task`` restricts to one task; ``figures`` / ``tables`` to some numbers (default all);
    ``compare_paper`` puts the published values beside ours in the tables; ``metric`` picks the
    generation metric (default BLEURT, RougeL, BLEU, chrF, whichever the runs have).
    ``fitted`` reuses an already loaded :class:`FittedResults` instead of reading ``results_dir``.
    With ``findings`` (how to fit and judge), the seven findings are judged per task into findings.md.
    """
    fitted = fitted or FittedResults.from_dir(results_dir, holdout=holdout, experiments=experiments)
    out = Path(out_dir)
    tasks = fitted.check_task(task)
    options = FigureOptions(metric=metric, dpi=dpi, formats=tuple(formats))
    numbers = list(figures) if figures is not None else list(FIGURES)
    drawn = [
        render_figure(fitted, n, out / "figures", tasks, options) for n in tqdm(numbers, desc="figures", disable=None)
    ]
    made, table_files = [], {}
    for number in tables if tables is not None else list(TABLES):
        table = make_table(fitted, number, task, compare_paper, metric)
        made.append(table)
        table_files[number] = table.write(out / "tables") if not table.empty else []
    joints = []
    for t in tasks:
        for method in fitted.methods(t):
            for law in ("multiplicative", "additive"):
                try:
                    joints.append(fitted.joint(t, method, law))
                except Missing:
                    pass
    fits_path = save_fits(out / "fits.json", joint=joints) if joints else None
    findings_path, findings_section = None, []
    if findings is not None:
        from scaling_repro.analysis.findings import findings_table
        from scaling_repro.analysis.judge import judge_results, judged_markdown

        judged = judge_results(fitted, findings, task)
        findings_path = out / "findings.md"
        atomic_write_text(findings_path, judged_markdown(judged) + "\n")
        findings_section = ["## Findings", f"Criteria and evidence: [findings.md]({findings_path.name})."]
        findings_section += [
            f"### {item.task}\n\n" + (f"Not judged: {item.skipped}" if item.skipped else findings_table(item.findings))
            for item in judged
        ]

    sections = [
        f"# Scaling report: {fitted.source or 'results'}",
        f"{len(fitted.records)} successful runs; tasks: {', '.join(tasks) or 'none'}. Laws fitted with the paper's "
        "joint procedure (Huber delta 1e-3 on L_hat - L; beta and E shared over model size and pretraining data). "
        "Units: x in parameters / tokens / prompt tokens or LoRA rank, Df in examples, loss in nats per token."
        + (f" All fits: [fits.json]({fits_path.name})." if fits_path else ""),
        "## Experiments found",
        _experiments_section(fitted),
        *findings_section,
        "## Figures",
        *(_figure_section(r, out) for r in drawn),
        "## Tables",
        *(_table_section(t, out, table_files[t.number]) for t in made),
    ]
    missing = [
        f"- **Figure {r.number}** ({r.title}): "
        + ("not drawn" if not r.drawn else "partly drawn")
        + "".join(f"\n  - {n}" for n in r.notes)
        for r in drawn
        if r.notes or not r.drawn
    ]
    missing += [
        f"- **Table {t.number}**: "
        + ("not computed" if t.empty else "partly computed")
        + "".join(f"\n  - {n}" for n in t.notes)
        for t in made
        if t.notes or t.empty
    ]
    sections += ["## What could not be drawn", "\n".join(missing) if missing else "Everything was drawn."]
    index = out / "index.md"
    atomic_write_text(index, "\n\n".join(sections) + "\n")
    log.info("report: %s", index)
    return Report(out, index, drawn, made, fits_path, findings_path)
