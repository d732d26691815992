"""The paper's figures by number, and :func:`render_figure`, which draws one into files.

Each figure is drawn per task (``figureNN_<task>.png/.pdf``), except Fig. 10, which puts the
base models of all tasks side by side (``figure10.png``). A figure that the results cannot
(fully) support draws what it can; :attr:`FigureResult.notes` says what is missing and which runs
would be needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scaling_repro.analysis.experiments import Missing
from scaling_repro.analysis.fitted_results import FittedResults
from scaling_repro.errors import UserError
from scaling_repro.figures import critical, loss, pretraining, quality
from scaling_repro.figures.style import save_figure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FigureOptions:
    """Rendering options: the generation metric of Figs. 6-9 and 11-14 (None: BLEURT, RougeL,
    BLEU, chrF, whichever is present first), resolution and file formats."""

    metric: str | None = None
    dpi: int = 200
    formats: tuple[str, ...] = ("png", "pdf")


@dataclass(frozen=True)
class FigureSpec:
    """One paper figure: its number, what it shows, and how to draw it."""

    number: int
    title: str
    draw: Callable  # (fitted, task, options) -> (Figure, notes); (fitted, tasks, options) when not per_task
    per_task: bool = True


@dataclass
class FigureResult:
    """The files a figure was drawn into and what could not be drawn (with the missing runs)."""

    number: int
    title: str
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def drawn(self) -> bool:
        """True when at least one file was written."""
        return bool(self.files)

    @property
    def images(self) -> list[Path]:
        """The PNG files (what a Markdown report embeds)."""
        return [p for p in self.files if p.suffix == ".png"]


FIGURES: dict[int, FigureSpec] = {
    spec.number: spec
    for spec in (
        FigureSpec(1, "Finetuning data scaling per model size (single-variable fits)", loss.figure_1),
        FigureSpec(2, "LLM model size x finetuning data (multiplicative joint law)", loss.joint_figure(2)),
        FigureSpec(3, "Pretraining data x finetuning data (multiplicative joint law)", loss.joint_figure(3)),
        FigureSpec(4, "PET parameter size x finetuning data (multiplicative joint law)", loss.joint_figure(4)),
        FigureSpec(5, "Critical finetuning data sizes between methods", critical.figure_5),
        FigureSpec(6, "Zero-shot quality vs model size and finetuning data", quality.figure_6),
        FigureSpec(7, "Generation quality: model size x finetuning data", quality.metric_figure(7)),
        FigureSpec(8, "Generation quality: pretraining data x finetuning data", quality.metric_figure(8)),
        FigureSpec(9, "Generation quality: PET parameter size x finetuning data", quality.metric_figure(9)),
        FigureSpec(
            10, "Base-model scaling (un-finetuned test loss vs model size)", pretraining.figure_10, per_task=False
        ),
        FigureSpec(11, "One-shot quality after finetuning: model size x finetuning data", quality.shot_figure(11)),
        FigureSpec(12, "Five-shot quality after finetuning: model size x finetuning data", quality.shot_figure(12)),
        FigureSpec(
            13, "One-shot quality after finetuning: pretraining data x finetuning data", quality.shot_figure(13)
        ),
        FigureSpec(
            14, "Five-shot quality after finetuning: pretraining data x finetuning data", quality.shot_figure(14)
        ),
    )
}


def figure_spec(number: int) -> FigureSpec:
    """Return the spec of figure ``number``; a UserError lists the valid numbers otherwise."""
    if number not in FIGURES:
        raise UserError(f"figure: got {number!r}; the paper's figures are 1-14")
    return FIGURES[number]


def render_figure(
    fitted: FittedResults,
    number: int,
    out_dir: str | Path,
    tasks: Sequence[str] | None = None,
    options: FigureOptions = FigureOptions(),
) -> FigureResult:
    """Draw figure ``number`` for ``tasks`` (default: every task) into ``out_dir``; return the result."""
    spec = figure_spec(number)
    out = Path(out_dir)
    tasks = list(tasks) if tasks else fitted.tasks
    result = FigureResult(number, spec.title)
    jobs = [(f"figure{number:02d}_{t}", t) for t in tasks] if spec.per_task else [(f"figure{number:02d}", tasks)]
    for stem, target in jobs:
        try:
            figure, notes = spec.draw(fitted, target, options)
        except Missing as err:
            if str(err) not in result.notes:
                result.notes.append(str(err))
            continue
        result.notes.extend(n for n in notes if n not in result.notes)
        result.files.extend(save_figure(figure, out, stem, options.formats, options.dpi))
        log.debug("figure %d: wrote %s", number, ", ".join(str(p) for p in result.files[-len(options.formats) :]))
    return result
