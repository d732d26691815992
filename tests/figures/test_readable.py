"""Every figure `report` can draw is readable: no two texts overlap and none leaves the canvas.

Checked with matplotlib's own renderer extents (tests/helpers/text_overlap.py) on results shaped
like the `--quick` tiny study and on results generated from the paper's Table 4 laws (all three
tasks). A planted overlap (labelled minor ticks on a short log axis) must make the check fail.
"""

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation

from scaling_repro.analysis.experiments import Missing
from scaling_repro.analysis.fitted_results import FittedResults
from scaling_repro.figures.critical import EXTRAPOLATE_DECADES, critical_curves, figure_5
from scaling_repro.figures.quality import figure_6
from scaling_repro.figures.registry import FIGURES, FigureOptions
from scaling_repro.figures.style import tick_short_log_axis
from scaling_repro.results import ZERO_SHOT_LOSS, RunRecord
from tests.helpers.text_overlap import text_problems

QUICK_MODELS = (18_592, 69_952, 184_880)  # the --quick study's grid
QUICK_TOKENS = (50_176, 100_352, 150_528)
QUICK_PET = {"prompt": 8, "lora": 4}
QUICK_DF = (25, 50, 100, 200)
LAWS = {"full": (100, 0.5, 1.0), "prompt": (10, 0.1, 1.5), "lora": (30, 0.2, 1.3)}  # (A, beta, E): laws that cross


def _quick_record(i, name, method, params, tokens, pet, df, seed, rng) -> RunRecord:
    a, beta, e = LAWS[method]
    loss = e + a * params**-0.2 * df**-beta * (150_528 / tokens) ** 0.1 + rng.normal(0, 1e-3)
    zero = 3.2 - 0.1 * np.log(params / 18_592) + (0.02 * np.log(df) if method == "full" else 0.0)
    score = {m: {"all": 40 - 8 * loss + rng.normal(0, 0.3)} for m in ("bleu", "chrf")}
    return RunRecord(
        run_id=f"q{i}",
        name=name,
        status="ok",
        spec={"train": {"max_steps": 0 if df == 0 else 60}},
        task="synthetic_mt",
        method=method,
        model=f"tiny-{params}",
        model_params=params,
        pretrain_tokens=tokens,
        pet_params=pet,
        finetune_examples=df,
        seed=seed,
        test_loss=loss,
        metrics=score,
        zero_shot={ZERO_SHOT_LOSS: {"qac-qab": zero, "mean": zero}, "bleu": {"qac-qab": 5.0, "mean": 5.0 + seed}},
        steps=60,
    )


@pytest.fixture(scope="module")
def quick_like():
    """Records shaped like the --quick tiny study: its model sizes, pretraining data, PET sizes and Df."""
    rng = np.random.default_rng(0)
    grid = []
    for method in LAWS:
        pet = QUICK_PET.get(method)
        grid += [("tiny-quick-model-size", method, p, QUICK_TOKENS[-1], pet) for p in QUICK_MODELS]
        grid += [("tiny-quick-pretrain-data", method, QUICK_MODELS[1], t, pet) for t in QUICK_TOKENS[:2]]
        if pet:
            grid += [("tiny-quick-pet-size", method, QUICK_MODELS[1], QUICK_TOKENS[-1], k) for k in (1, 4, 16, 64)]
    records = [
        _quick_record(i, *cell, df, 0, rng) for i, (cell, df) in enumerate((c, d) for c in grid for d in QUICK_DF)
    ]
    return FittedResults(records, holdout="largest")


def _drawn(fitted: FittedResults):
    for number, spec in FIGURES.items():
        for target in fitted.tasks if spec.per_task else [fitted.tasks]:
            try:
                figure, _ = spec.draw(fitted, target, FigureOptions())
            except Missing:
                continue
            yield f"Fig. {number} ({target})", figure


def _assert_readable(fitted: FittedResults) -> None:
    problems, drawn = [], 0
    for name, figure in _drawn(fitted):
        problems += text_problems(figure, name)
        drawn += 1
    assert drawn >= 8
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_every_figure_of_a_quick_like_study_is_readable(quick_like):
    _assert_readable(quick_like)


@pytest.mark.slow
def test_every_figure_of_the_paper_law_results_is_readable(paper_fitted):
    assert len(paper_fitted.tasks) == 3
    _assert_readable(paper_fitted)


def test_a_planted_overlap_fails_and_names_the_figure_panel_and_texts():
    fig = Figure(figsize=(3.4, 2.7), layout="constrained")
    ax = fig.subplots()
    ax.plot([18_600, 382_000], [1, 2])
    ax.set_xscale("log")
    ax.set_title("vs model size")
    ax.xaxis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(100, 100)))
    problems = text_problems(fig, "Fig. 5 (t)")
    assert problems
    assert any(
        p.startswith("Fig. 5 (t): panel 1 ('vs model size') x minor tick label") and "overlaps panel 1" in p
        for p in problems
    ), problems
    ax.xaxis.set_minor_formatter("")
    assert text_problems(fig, "Fig. 5 (t)") == []


def test_a_text_outside_the_canvas_fails():
    fig = Figure(figsize=(3, 2))
    fig.text(0.95, 0.5, "a long label that runs off the right edge")
    assert any("outside the canvas" in p for p in text_problems(fig, "F"))


def test_figure5_dashes_the_extrapolated_part_and_clips_it(quick_like, paper_fitted):
    for fitted, task in ((quick_like, "synthetic_mt"), (paper_fitted, "wmt19_en_zh")):
        fig, _ = figure_5(fitted, task, FigureOptions())
        assert "extrapolated" in " ".join(t.get_text() for t in fig.legends[0].get_texts())
        assert all(any(line.get_linestyle() == "--" for line in ax.lines) for ax in fig.axes)
        for factor in ("model_size", "pretrain_data"):
            panel = critical_curves(fitted, task, factor, [])
            lo, hi = panel["data_range"]
            values = np.concatenate([d for curves in panel["curves"].values() for _, d in curves])
            values = values[np.isfinite(values)]
            assert values.size and values.min() >= lo / 10**EXTRAPOLATE_DECADES
            assert values.max() <= hi * 10**EXTRAPOLATE_DECADES


def test_figure6_draws_the_zero_shot_loss_with_the_metric_below(quick_like, paper_fitted):
    for fitted, task, metric in ((quick_like, "synthetic_mt", "BLEU"), (paper_fitted, "wmt19_en_zh", "BLEURT")):
        fig, notes = figure_6(fitted, task, FigureOptions())
        labels = [ax.get_ylabel() for ax in fig.axes]
        assert labels == ["zero-shot test loss (nats)"] * 3 + [f"zero-shot {metric} (mean)"] * 3 and not notes
    generated_only = [
        r.model_copy(update={"zero_shot": {k: v for k, v in r.zero_shot.items() if k != ZERO_SHOT_LOSS}})
        for r in quick_like.records
    ]
    fig, notes = figure_6(FittedResults(generated_only), "synthetic_mt", FigureOptions())
    assert "zero-shot test loss" not in " ".join(ax.get_ylabel() for ax in fig.axes)
    assert any("finding 7 reads" in n for n in notes)


@pytest.mark.parametrize(
    ("lo", "hi", "values", "expected"),
    [
        (18_600, 382_000, (), ["20K", "50K", "100K", "200K"]),
        (1.4e6, 2e6, (), ["1.5M", "1.6M", "1.7M", "1.8M", "1.9M"]),
        (1.4e6, 2e6, tuple(np.linspace(1.4e6, 2e6, 12)), ["1.4M", "1.51M", "1.62M", "1.73M", "1.84M", "2M"]),
    ],
)
def test_a_short_log_axis_is_ticked_at_few_readable_values(lo, hi, values, expected):
    fig = Figure(figsize=(3.4, 2.7), layout="constrained")
    ax = fig.subplots()
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    tick_short_log_axis(ax.xaxis, values)
    assert [t.get_text() for t in ax.get_xticklabels()] == expected
    assert text_problems(fig, "axis") == []
