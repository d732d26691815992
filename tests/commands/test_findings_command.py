"""`scaling-repro findings` and `report`'s findings.md: the seven verdicts per task of any results directory."""

import json

import pytest

from scaling_repro.analysis.synthetic import write_synthetic_results
from scaling_repro.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """En-De on the paper's grid (one seed per point) and MLSum with a PET-size experiment only."""
    root = tmp_path_factory.mktemp("runs")
    write_synthetic_results(root, tasks=("wmt14_en_de",), runs=1, noise=0.003, seed=0, baselines=False)
    write_synthetic_results(root, tasks=("mlsum",), methods=("lora",), factors=("pet_size",), runs=1, seed=1)
    return root


@pytest.fixture(scope="module")
def judged(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("findings")
    code = main(["findings", "--results", str(results), "--bootstrap", "8", "--json", str(out / "f.json")])
    assert code == 0
    return json.loads((out / "f.json").read_text())


def test_findings_json_has_task_finding_verdict_numbers_and_reason_for_each_of_the_seven(judged):
    en_de = [row for row in judged if row["task"] == "wmt14_en_de"]
    assert [row["finding"] for row in en_de] == list(range(1, 8))
    for row in en_de:
        assert row["verdict"] in ("reproduced", "not reproduced", "inconclusive", "not testable")
        assert row["numbers"] and row["reason"] and row["criterion"]


def test_a_task_without_a_model_size_experiment_is_named_with_why_it_was_not_judged(judged):
    (mlsum,) = [row for row in judged if row["task"] == "mlsum"]
    assert mlsum["finding"] is None and "model-size" in mlsum["reason"]


def test_findings_prints_one_row_per_task_and_finding(results, capsys):
    assert main(["findings", "--results", str(results), "--task", "wmt14_en_de", "--bootstrap", "4"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("wmt14_en_de")]
    assert len(rows) == 7


def test_findings_refuses_a_negative_bootstrap_naming_the_option(results, capsys):
    assert main(["findings", "--results", str(results), "--bootstrap", "-1"]) != 0
    assert "--bootstrap: got -1" in capsys.readouterr().err


def test_report_writes_findings_md_beside_the_figures(results, tmp_path):
    out = tmp_path / "report"
    args = ["report", "--results", str(results), "--out", str(out), "--task", "wmt14_en_de", "--bootstrap", "4"]
    assert main([*args, "--format", "png", "--dpi", "20"]) == 0
    text = (out / "findings.md").read_text()
    assert "Criterion:" in text and "## 7." in text
    assert "findings.md" in (out / "index.md").read_text()
