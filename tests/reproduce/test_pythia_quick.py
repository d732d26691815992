"""`scaling-repro reproduce pythia --quick`: the Pythia study plan end to end on CPU, offline:
stand-in corpus and tiny random GPT-NeoX stand-ins for Pythia, every stage, the report and
findings.md. One study is run once per module and then inspected."""

import json
import time

import pytest

from scaling_repro.cli import main
from scaling_repro.results import load_results

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("pythia") / "study"
    started = time.perf_counter()
    code = main(["reproduce", "pythia", "--quick", "--out", str(out), "--jobs", "2"])
    return out, code, time.perf_counter() - started


def test_the_quick_study_prints_its_plan_runs_every_stage_and_writes_its_report(quick_study, capsys):
    out, code, seconds = quick_study
    assert code == 0
    for name in ("findings.md", "summary.md", "analysis.json"):
        assert (out / "report" / name).is_file(), name
    assert json.loads((out / "tokens_per_example.json").read_text())["tokens_per_example"] > 5
    print(f"pythia --quick: {seconds:.0f} s")


def test_every_run_finetuned_a_stand_in_of_the_plan(quick_study):
    out, _, _ = quick_study
    records = load_results(out / "runs", include_failed=True)
    assert len(records) == 57 and all(r.ok for r in records)
    assert {r.method for r in records} == {"full", "prompt", "lora"}
    assert {r.model for r in records} == {f"stand_ins/pythia-{size}" for size in ("160m", "410m", "1b")}
    assert {r.pretrain_tokens for r in records if r.model.endswith("1b")} == {
        step * 2_097_152 for step in (40_000, 88_000, 143_000)
    }
    zero_shot = [r for r in records if r.spec["eval"]["zero_shot"]]
    assert zero_shot and all(r.zero_shot["loss"]["mean"] > 0 for r in zero_shot)


def test_the_inline_recipes_are_written_into_the_study_folder(quick_study):
    out, _, _ = quick_study
    assert len(list((out / "recipes").glob("pythia-quick-*.yaml"))) == 8


def test_the_analysis_fits_every_method_on_the_model_size_axis(quick_study):
    out, _, _ = quick_study
    analysis = json.loads((out / "report" / "analysis.json").read_text())
    for method in ("full", "prompt", "lora"):
        assert "model_size" in analysis["methods"][method]["multiplicative"]["fits"]
    assert {"pretrain_data", "pet_size"} <= set(analysis["methods"]["lora"]["multiplicative"]["fits"])


def test_a_second_invocation_does_no_work(quick_study, capsys):
    out, _, _ = quick_study
    assert main(["reproduce", "pythia", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Plan pythia-quick: 57 finetuning runs" in printed
    assert "0 runs trained, 57 already done" in printed and "results unchanged" in printed
