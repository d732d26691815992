"""Figures 6-9 and 11-14: generation quality (BLEURT, RougeL or any metric present) vs finetuning data.

- Fig. 6: zero-shot test loss (what finding 7 reads) of the model-size runs, and the zero-shot
  score (mean over directions) in a second row.
- Figs. 7-9: test-set score of the experiments of Figs. 2-4; the box gives Pearson's r between
  PPL and the score over the panel's points (Table 7).
- Figs. 11-14: one-/five-shot score after finetuning (model-size runs: 11, 12; pretraining-data
  runs: 13, 14), with the un-finetuned Baseline of each base model as a dashed line.

The metric is ``options.metric`` or the first of BLEURT, RougeL, BLEU, chrF that the runs have.
Points are joined by lines (the paper fits no laws to these scores); held-out points are marked
as in the loss figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from functools import partial

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import pearsonr

from scaling_repro.analysis.experiments import (
    FACTOR_NAMES,
    METHOD_NAMES,
    Missing,
    is_baseline,
)
from scaling_repro.analysis.fitted_results import METRIC_PREFERENCE, FittedResults
from scaling_repro.figures.loss import fixed_text, methods_for
from scaling_repro.figures.series import (
    DF_AXIS,
    experiment_series,
    held_by_point,
    legend_title,
    mean_by_point,
    require_values,
)
from scaling_repro.figures.style import Panel, draw_figure
from scaling_repro.results import ZERO_SHOT_LOSS, RunRecord

METRIC_NAMES = {"bleurt": "BLEURT", "rougeL": "RougeL", "bleu": "BLEU", "chrf": "chrF"}
METRIC_FIGURES = {7: "model_size", 8: "pretrain_data", 9: "pet_size"}
SHOT_FIGURES = {11: (1, "model_size"), 12: (5, "model_size"), 13: (1, "pretrain_data"), 14: (5, "pretrain_data")}
SHOT_WORDS = {1: "one-shot", 5: "five-shot"}


def metric_name(metric: str) -> str:
    """Return the display name of a metric ('bleurt' -> 'BLEURT')."""
    return METRIC_NAMES.get(metric, metric)


def choose_metric(available: set[str], requested: str | None, what: str, task: str) -> str:
    """Return ``requested`` or the preferred metric among ``available``; raise Missing if none fits."""
    if requested is not None:
        if requested not in available:
            raise Missing(f"{task}: no run has {what} {requested!r}; present: {sorted(available) or 'none'}")
        return requested
    if not available:
        raise Missing(f"{task}: no run has {what} scores")
    return min(available, key=lambda m: (METRIC_PREFERENCE.index(m) if m in METRIC_PREFERENCE else 99, m))


def _finetuned(fitted: FittedResults, task: str) -> list[RunRecord]:
    return [r for r in fitted.records if r.task == task and not is_baseline(r)]


def value_panels(
    fitted: FittedResults,
    task: str,
    factor: str,
    value: Callable[[RunRecord], float | None],
    what: str,
    ylabel: str,
    notes: list[str],
    methods: list[str] | None = None,
    baseline: Callable[..., float | None] | None = None,
    correlate: str | None = None,
) -> list[Panel]:
    """Return one panel per method: the factor experiment's mean ``value`` per point vs Df.

    ``baseline(experiment, x)`` gives a dashed level per factor value; ``correlate`` (a metric
    name) adds Pearson's r between PPL and the values to the panel.
    """
    panels = []
    for method in methods or methods_for(fitted, task, factor):
        try:
            exp = fitted.experiment(task, method, factor)
            values = mean_by_point(exp, value)
            require_values(values, what, exp)
        except Missing as err:
            notes.append(str(err))
            continue
        held = held_by_point(exp.points(fitted.holdout))
        series = experiment_series(
            exp, values, held, connect=True, baseline=partial(baseline, exp) if baseline else None
        )
        box = None
        if correlate:
            losses = mean_by_point(exp, lambda r: r.test_loss)
            keys = [k for k in values if k in losses]
            if len(keys) >= 3:
                r, p = pearsonr(np.exp([losses[k] for k in keys]), [values[k] for k in keys])
                box = f"r(PPL, {metric_name(correlate)}) = {r:.3f}\np = {p:.1e}, n = {len(keys)}"
        panels.append(
            Panel(
                METHOD_NAMES[method],
                series,
                DF_AXIS,
                ylabel,
                box=box,
                box_loc="lower right",
                legend_title=legend_title(factor, method),
            )
        )
    return panels


def figure_6(fitted: FittedResults, task: str, options) -> tuple[Figure, list[str]]:
    """Fig. 6: zero-shot test loss (what finding 7's verdict reads) vs finetuning data per model
    size, one panel per method; the zero-shot generation metric in a second row."""
    notes: list[str] = []
    finetuned = _finetuned(fitted, task)

    def zero_shot(key: str) -> Callable[[RunRecord], float | None]:
        return lambda r: (r.zero_shot.get(key) or {}).get("mean")

    rows = []
    if any(ZERO_SHOT_LOSS in r.zero_shot for r in finetuned):
        label = "zero-shot test loss (nats)"
        rows.append(value_panels(fitted, task, "model_size", zero_shot(ZERO_SHOT_LOSS), label, label, notes))
    else:
        notes.append(
            f"{task}: no run has a zero-shot test loss (eval.zero_shot '{ZERO_SHOT_LOSS}'), which finding 7 reads"
        )
    available = {m for r in finetuned for m in r.zero_shot if m != ZERO_SHOT_LOSS}
    try:
        metric = choose_metric(available, options.metric, "zero-shot (eval.zero_shot)", task)
        label = f"zero-shot {metric_name(metric)} (mean)"
        rows.append(value_panels(fitted, task, "model_size", zero_shot(metric), f"zero-shot {metric}", label, notes))
    except Missing as err:
        notes.append(str(err))
    rows = [row for row in rows if row]
    if not rows:
        raise Missing("; ".join(notes))
    both = set.intersection(*({p.title for p in row} for row in rows))  # a grid: methods with every row
    panels = [p for row in rows for p in row if p.title in both] if both else rows[0]
    rows = rows if both else rows[:1]
    figure = draw_figure(panels, f"{task}: zero-shot quality after finetuning", "model size", rows=len(rows))
    return figure, notes


def metric_figure(number: int):
    """Return the draw function of Fig. 7, 8 or 9 (the generation-quality twins of Figs. 2-4)."""
    factor = METRIC_FIGURES[number]

    def draw(fitted: FittedResults, task: str, options) -> tuple[Figure, list[str]]:
        notes: list[str] = []
        metric = choose_metric(
            {m for r in _finetuned(fitted, task) for m in r.metrics}, options.metric, "test metric", task
        )

        def score(r: RunRecord) -> float | None:
            return (r.metrics.get(metric) or {}).get("all")

        panels = value_panels(
            fitted, task, factor, score, f"test {metric}", f"test {metric_name(metric)}", notes, correlate=metric
        )
        if not panels:
            raise Missing("; ".join(notes))
        methods = methods_for(fitted, task, factor)
        fixed = fixed_text(fitted, task, factor, methods)
        title = f"{task}: {metric_name(metric)} for {FACTOR_NAMES[factor]} x finetuning data{fixed}"
        return draw_figure(panels, title), notes

    draw.__doc__ = f"Fig. {number}: test-set generation quality of the Fig. {number - 5} experiment."
    return draw


def _baseline_levels(fitted: FittedResults, task: str, shots: int, metric: str) -> dict[tuple, float]:
    """Return (model_params, pretrain_tokens) -> mean k-shot score of the Baseline runs."""
    levels: dict[tuple, list[float]] = defaultdict(list)
    for r in fitted.baselines(task):
        score = ((r.few_shot.get(str(shots)) or {}).get(metric) or {}).get("all")
        if score is not None:
            levels[(r.model_params, r.pretrain_tokens)].append(score)
    return {k: float(np.mean(v)) for k, v in levels.items()}


def shot_figure(number: int):
    """Return the draw function of Figs. 11-14 (k-shot after finetuning, with Baseline)."""
    shots, factor = SHOT_FIGURES[number]

    def draw(fitted: FittedResults, task: str, options) -> tuple[Figure, list[str]]:
        notes: list[str] = []
        available = {m for r in _finetuned(fitted, task) for m in r.few_shot.get(str(shots), {})}
        metric = choose_metric(available, options.metric, f"{SHOT_WORDS[shots]} (eval.few_shot: [{shots}])", task)
        levels = _baseline_levels(fitted, task, shots, metric)
        missing_base: set[str] = set()

        def baseline(exp, x: float) -> float | None:
            run = exp.runs_at(x)[0]
            level = levels.get((run.model_params, run.pretrain_tokens))
            if level is None:
                missing_base.add(f"{run.model} ({run.model_params} params, {run.pretrain_tokens} pretraining tokens)")
            return level

        def score(r: RunRecord) -> float | None:
            return ((r.few_shot.get(str(shots)) or {}).get(metric) or {}).get("all")

        panels = value_panels(
            fitted,
            task,
            factor,
            score,
            f"{SHOT_WORDS[shots]} {metric}",
            f"{SHOT_WORDS[shots]} {metric_name(metric)}",
            notes,
            baseline=baseline,
        )
        if not panels:
            raise Missing("; ".join(notes))
        if missing_base:
            notes.append(
                f"{task}: no un-finetuned Baseline run (train.max_steps=0, eval.few_shot: [{shots}]) of "
                + ", ".join(sorted(missing_base))
            )
        methods = methods_for(fitted, task, factor)
        title = (
            f"{task}: {SHOT_WORDS[shots]} {metric_name(metric)} after finetuning, "
            f"{FACTOR_NAMES[factor]} x finetuning data{fixed_text(fitted, task, factor, methods)}"
        )
        return draw_figure(panels, title, legend_title(factor, "full")), notes

    draw.__doc__ = f"Fig. {number}: {SHOT_WORDS[shots]} quality after finetuning vs Baseline."
    return draw
