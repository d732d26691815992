"""What the figures show (curves through points, held-out marks) and how they handle missing runs."""

import logging
import subprocess
import sys

import numpy as np
import pytest

from scaling_repro.analysis.fitted_results import FittedResults
from scaling_repro.cli import main
from scaling_repro.figures.loss import joint_panels, single_fit_series
from scaling_repro.figures.quality import choose_metric
from scaling_repro.figures.registry import FigureOptions, render_figure
from scaling_repro.results import RunRecord
from tests.helpers.figures_fixtures import NOISE


@pytest.mark.parametrize("factor", ["model_size", "pretrain_data", "pet_size"])
def test_joint_fit_curves_run_through_the_points_and_mark_the_held_out_ones(paper_fitted, factor):
    notes = []
    panels = joint_panels(paper_fitted, "wmt19_en_zh", factor, notes)
    assert [p.title for p in panels] == (["Prompt", "LoRA"] if factor == "pet_size" else ["FMT", "Prompt", "LoRA"])
    assert not notes
    for panel, method in zip(panels, [m for m in ("full", "prompt", "lora") if factor != "pet_size" or m != "full"]):
        fit = paper_fitted.fit("wmt19_en_zh", method, factor)
        assert "$\\Delta_e/\\Delta_h$" in panel.box and f"{fit.params['beta']:.3g}" in panel.box
        points = paper_fitted.points("wmt19_en_zh", method, factor)
        held = {(x, d): h for x, d, h in zip(points.x, points.data_size, points.held_out)}
        assert len(panel.series) == len(set(points.x))
        for x, series in zip(sorted(set(points.x)), panel.series):  # one series per factor value, ascending
            grid, curve = series.curve
            assert grid.min() < series.x.min() and grid.max() > series.x.max()
            assert np.abs(np.interp(np.log(series.x), np.log(grid), curve) - series.y).max() < 10 * NOISE
            assert list(series.held_out) == [held[(x, d)] for d in series.x]


def test_a_log_axis_spanning_less_than_two_decades_is_ticked_at_the_data_values():
    from matplotlib.figure import Figure

    from scaling_repro.figures.style import Panel, Series, draw_panel

    x = np.array([25.0, 50.0, 100.0, 200.0, 400.0])
    panel = Panel(title="t", series=[Series(label="s", color="k", x=x, y=1 / x)], xlabel="Df", ylabel="loss")
    ax = Figure().subplots()
    draw_panel(ax, panel)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["25", "50", "100", "200", "400"]
    assert not any(t.get_text() for t in ax.get_xticklabels(minor=True))


def test_figure1_fits_each_model_size_separately(paper, paper_fitted):
    series = single_fit_series(paper_fitted, "wmt14_en_de", "lora", notes := [])
    assert [s.label.split(":")[0] for s in series] == ["1B", "2B", "4B", "8B", "16B"]
    assert not notes
    true_beta = paper.truth[("wmt14_en_de", "lora")]["model_size"]["beta"]
    betas = [float(s.label.split("=")[1].split(",")[0]) for s in series]
    assert np.median(betas) == pytest.approx(true_beta, abs=0.02)
    assert all(s.held_out[-1] and s.held_out.sum() == 1 for s in series)  # largest Df, even for 16B


def test_a_figure_without_its_runs_names_them_and_others_still_draw(tiny_like, tmp_path):
    fitted = FittedResults(tiny_like.records)
    options = FigureOptions(dpi=20, formats=("png",))
    missing = render_figure(fitted, 3, tmp_path, options=options)
    assert not missing.drawn
    assert any(
        "synthetic_mt / LoRA: no pretraining data size experiment" in n and "pretrain_tokens" in n
        for n in missing.notes
    )
    drawn = render_figure(fitted, 2, tmp_path, options=options)
    assert [p.name for p in drawn.files] == ["figure02_synthetic_mt.png"] and not drawn.notes


def test_the_line_per_figure_written_is_debug_so_only_v_shows_it(tiny_like, tmp_path, caplog):
    with caplog.at_level(logging.DEBUG, logger="scaling_repro"):
        render_figure(FittedResults(tiny_like.records), 2, tmp_path, options=FigureOptions(dpi=20, formats=("png",)))
    wrote = [r.levelno for r in caplog.records if r.getMessage().startswith("figure 2: wrote")]
    assert wrote == [logging.DEBUG]


def test_any_task_name_and_metric_set_works(tiny_like):
    fitted = FittedResults(tiny_like.records)
    assert fitted.tasks == ["synthetic_mt"]
    assert fitted.metrics("synthetic_mt") == ["bleu", "chrf"]
    assert choose_metric({"chrf", "bleu", "other"}, None, "test metric", "t") == "bleu"
    assert choose_metric({"chrf", "bleu"}, "chrf", "test metric", "t") == "chrf"


@pytest.mark.slow
def test_figure_command_writes_png_and_pdf_and_reports_missing_runs(tiny_like, tmp_path, capsys):
    args = ["--results", str(tiny_like.root), "--out", str(tmp_path), "--dpi", "20"]
    assert main(["figure", "7", *args, "--metric", "chrf"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure07_synthetic_mt.pdf", "figure07_synthetic_mt.png"]
    assert main(["figure", "8", *args]) == 1
    assert "missing: synthetic_mt / FMT: no pretraining data size experiment" in capsys.readouterr().err
    assert main(["figure", "15", *args]) == 2


@pytest.mark.slow
def test_figures_tables_report_and_advise_import_no_torch():
    code = (
        "import sys; import scaling_repro.report.results_report, scaling_repro.analysis.advice, "
        "scaling_repro.analysis.synthetic, scaling_repro.commands.figure, scaling_repro.commands.table, "
        "scaling_repro.commands.report, scaling_repro.commands.advise; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_figure1_draws_data_scaling_of_a_single_model(tmp_path):
    # The tiny study's data-scaling recipe: one model, three methods, four Df, three seeds, 3000 held out.
    records = [
        RunRecord(
            run_id=f"{m}{df}{s}",
            name="tiny-data-scaling",
            status="ok",
            spec={"train": {"max_steps": 200}},
            held_out=df == 3000,
            task="synthetic_mt",
            method=m,
            model="tiny-s",
            model_params=3_200_000,
            pretrain_tokens=300_000,
            pet_params=None if m == "full" else 4,
            finetune_examples=df,
            seed=s,
            test_loss=1.5 + 3.0 * df**-0.3 + 0.001 * s,
            steps=200,
        )
        for m in ("full", "prompt", "lora")
        for df in (100, 300, 1000, 3000)
        for s in range(3)
    ]
    fitted = FittedResults(records)
    notes = []
    series = single_fit_series(fitted, "synthetic_mt", "lora", notes)
    assert [s.label.split(":")[0] for s in series] == ["3.2M"] and not notes
    assert list(series[0].held_out) == [False, False, False, True]
    assert series[0].curve is not None
    options = FigureOptions(dpi=20, formats=("png",))
    assert render_figure(fitted, 1, tmp_path, options=options).drawn
    figure2 = render_figure(fitted, 2, tmp_path, options=options)
    assert not figure2.drawn and any("model_params [3.2e+06]" in n for n in figure2.notes)
