"""CI's run of the embedded default: `scaling-repro reproduce tiny --quick`, the whole pipeline
(tokenizer, pretraining, ~90 finetuning runs, fits, figures, findings) on two CPU processes.

Marked ``slow`` to be easy to find (``pytest -m slow``); it runs in the default ``pytest -q``
(about 2 minutes on 2 shared cores). One study is run once per session and then inspected.
"""

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from scaling_repro.cli import main
from scaling_repro.config.study_plan import RECIPES_DIR
from scaling_repro.reproduce import load_plan, plan_path, reproduce
from scaling_repro.results import RESULT_FILE, load_results, read_record

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick") / "study"
    started = time.perf_counter()
    code = main(["reproduce", "tiny", "--quick", "--out", str(out), "--jobs", "2"])
    return out, code, time.perf_counter() - started


def test_the_quick_study_finishes_and_writes_its_report(quick_study):
    out, code, _ = quick_study
    assert code == 0
    for name in ("findings.md", "summary.md", "analysis.json", "index.md", "fits.json"):
        assert (out / "report" / name).is_file(), name
    assert list((out / "report" / "figures").glob("*.png"))


def test_every_run_succeeded_with_a_test_loss_and_generation_metrics(quick_study):
    out, _, _ = quick_study
    records = load_results(out / "runs", include_failed=True)
    assert len(records) >= 80 and all(r.ok for r in records)
    assert all(r.test_loss is not None and "chrf" in r.metrics and "bleu" in r.metrics for r in records)
    zero_shot = [r for r in records if r.spec["eval"]["zero_shot"]]
    assert zero_shot and all(r.zero_shot["loss"]["mean"] > 0 for r in zero_shot)
    assert {r.method for r in records} == {"full", "prompt", "lora"}


def test_findings_md_gives_a_verdict_for_each_of_the_seven_findings(quick_study):
    out, _, _ = quick_study
    text = (out / "report" / "findings.md").read_text()
    verdicts = re.findall(
        r"^Verdict: \*\*(reproduced|not reproduced|inconclusive|not testable)( \(.+\))?\*\*\.$", text, re.MULTILINE
    )
    assert len(verdicts) == 7
    assert text.count("Criterion: ") == 7


def test_the_analysis_holds_every_method_s_joint_fits_with_held_out_mad(quick_study):
    out, _, _ = quick_study
    analysis = json.loads((out / "report" / "analysis.json").read_text())
    for method in ("full", "prompt", "lora"):
        fits = analysis["methods"][method]["multiplicative"]["fits"]
        assert fits["model_size"]["mad_held_out"] is not None
        assert "pretrain_data" in fits
    assert {"pet_size"} <= set(analysis["methods"]["lora"]["multiplicative"]["fits"])


def test_a_second_invocation_does_no_work_and_takes_seconds(quick_study, capsys):
    out, _, _ = quick_study
    started = time.perf_counter()
    assert main(["reproduce", "tiny", "--quick", "--out", str(out)]) == 0
    assert time.perf_counter() - started < 30
    printed = capsys.readouterr().out
    assert "0 runs trained" in printed and "already pretrained" in printed and "results unchanged" in printed


def test_the_study_never_changes_the_process_s_working_directory(quick_study, tmp_path, monkeypatch):
    out, _, _ = quick_study
    monkeypatch.chdir(tmp_path)
    seen = []
    reproduce(load_plan(plan_path("tiny", quick=True)), out, on_stage=lambda stage: seen.append(Path.cwd()))
    assert seen == [tmp_path] * 5


def test_the_stages_info_lines_go_to_the_log_file_not_the_terminal(quick_study, capsys):
    out, _, _ = quick_study
    assert main(["reproduce", "tiny", "--quick", "--out", str(out)]) == 0
    assert " INFO " not in capsys.readouterr().err
    assert " INFO scaling_repro." in (out / "reproduce.log").read_text()


def test_deleted_figures_are_drawn_again_without_refitting(quick_study, capsys):
    out, _, _ = quick_study
    for png in (out / "report" / "figures").glob("*.png"):
        png.unlink()
    assert main(["reproduce", "tiny", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "results unchanged" in printed and "figures unchanged" not in printed
    assert list((out / "report" / "figures").glob("*.png"))


def test_an_interrupted_study_continues_with_only_the_missing_runs(quick_study, capsys):
    out, _, _ = quick_study
    lost = sorted((out / "runs").rglob(RESULT_FILE))[:2]
    for path in lost:
        path.unlink()
    assert main(["reproduce", "tiny", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 runs trained" in printed and "law fits" in printed  # refit: the results changed
    assert all(path.is_file() for path in lost)


def test_a_result_of_a_run_no_longer_in_the_plan_is_left_out_of_the_fits(quick_study, capsys):
    out, _, _ = quick_study
    kept = min((out / "runs").rglob(RESULT_FILE)).parent
    stale = kept.parent / "000000000000"  # as if a recipe had changed since this run
    shutil.copytree(kept, stale)
    record = read_record(stale)
    record.model_copy(update={"run_id": stale.name, "test_loss": record.test_loss + 5.0}).write(stale)
    try:
        assert main(["reproduce", "tiny", "--quick", "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        assert "results unchanged" in printed and "1 result of runs not in the plan left out" in printed
    finally:
        shutil.rmtree(stale)


def test_continuing_with_a_changed_pretraining_recipe_is_an_error_naming_the_change(quick_study, tmp_path, capsys):
    out, _, _ = quick_study
    quick = RECIPES_DIR / "tiny" / "quick"
    (tmp_path / "pretrain.yaml").write_text(f"extends: {quick / 'pretrain.yaml'}\nlr: 1.0e-3\n")
    finetune = ", ".join(str(path) for path in sorted(quick.glob("*.yaml")) if path.name != "pretrain.yaml")
    (tmp_path / "plan.yaml").write_text(
        f"extends: {quick.parent / 'quick.yaml'}\npretrain_recipe: pretrain.yaml\nfinetune: [{finetune}]\n"
    )
    assert main(["reproduce", "tiny", "--plan", str(tmp_path / "plan.yaml"), "--out", str(out)]) != 0
    printed = capsys.readouterr()
    assert "lr: 0.003 -> 0.001" in printed.out + printed.err and "new --out" in printed.out + printed.err
