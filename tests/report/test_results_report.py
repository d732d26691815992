"""``build_report`` on synthetic results: every figure renders, index.md shows them and what is missing."""

import re

import numpy as np
import pytest
from matplotlib.image import imread

from scaling_repro.analysis.synthetic import write_synthetic_results
from scaling_repro.cli import main
from scaling_repro.figures.registry import FIGURES
from scaling_repro.fit.record import load_fits
from scaling_repro.report.results_report import build_report


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """En-De with every experiment; MLSum with only PET-size runs (and no zero-shot or five-shot scores)."""
    root = tmp_path_factory.mktemp("results")
    write_synthetic_results(root, tasks=("wmt14_en_de",), runs=1, noise=1e-3, seed=2)
    write_synthetic_results(root, tasks=("mlsum",), methods=("prompt", "lora"), factors=("pet_size",), runs=1, seed=3)
    return root


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    """The report of ``results``, PNG only at low DPI (fast)."""
    return build_report(results, tmp_path_factory.mktemp("report"), formats=("png",), dpi=30)


@pytest.mark.parametrize("number", sorted(FIGURES))
def test_every_figure_renders_a_non_empty_png(report, number):
    result = next(f for f in report.figures if f.number == number)
    assert result.images, result.notes
    for path in result.images:
        image = imread(path)
        assert image.shape[0] > 50 and image.shape[1] > 100
        assert image[..., :3].std() > 0.05  # not a blank canvas


def test_index_embeds_every_image_and_lists_what_is_missing(report):
    index = report.index.read_text()
    embedded = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", index)
    drawn = [p for f in report.figures for p in f.images]
    assert sorted(embedded) == sorted(p.relative_to(report.out_dir).as_posix() for p in drawn)
    assert all((report.out_dir / e).is_file() for e in embedded)
    missing = index.split("## What could not be drawn")[1]
    assert "mlsum: no run has zero-shot" in missing and "mlsum: no run has five-shot" in missing
    assert "mlsum / Prompt: no LLM model size experiment" in missing
    assert set(report.missing) >= {"Figure 2", "Figure 3", "Figure 6", "Figure 12", "Figure 14"}
    assert "| wmt14_en_de | LoRA | PET parameter size | 99 |" in index  # the experiments found


def test_report_writes_tables_and_fits(report):
    assert {t.number for t in report.tables} == {2, 4, 5, 6, 7}
    for table in report.tables:
        assert (report.out_dir / "tables" / f"{table.stem}.csv").is_file()
    assert "(0.52)" in (report.out_dir / "tables" / "table04.md").read_text()  # --compare-paper is the default
    _, joints = load_fits(report.fits)
    assert {(j.labels["task"], j.labels["method"], j.law) for j in joints} == {
        (t, m, law)
        for t, methods in (("wmt14_en_de", ("full", "prompt", "lora")), ("mlsum", ("prompt", "lora")))
        for m in methods
        for law in ("multiplicative", "additive")
    }


@pytest.mark.slow
def test_report_command_summarises_what_it_drew(results, tmp_path, capsys):
    assert (
        main(
            [
                "report",
                "--results",
                str(results),
                "--task",
                "mlsum",
                "--out",
                str(tmp_path / "r"),
                "--format",
                "png",
                "--dpi",
                "20",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    # data scaling of the one model (1), PET size (4, 9), base models (10)
    assert re.search(r"wrote .*index\.md: 4/14 figures", out)
    assert "Figure 2: mlsum / Prompt: no LLM model size experiment" in out
    assert np.all([p.is_file() for p in (tmp_path / "r" / "figures").iterdir()])
