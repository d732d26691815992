"""scripts/gpu_check.py: every check's code path runs on the CPU (--smoke), and the report
keeps every row however a check ends."""

import json
import subprocess
import sys

import pytest

from scaling_repro.gpu_checks import lengths
from scaling_repro.gpu_checks.checks import CHECKS
from scaling_repro.gpu_checks.report import JSON_FILE, MARKDOWN_FILE, Report
from scaling_repro.gpu_checks.runner import SMOKE, Context, Skip, run_check
from tests.helpers.paths import REPO

# What a CPU may skip: what needs CUDA, and DeepSpeed where it is not installed.
ALLOWED_SKIPS = ("skipped: needs CUDA", "skipped: deepspeed is not importable")


@pytest.mark.slow
def test_smoke_run_writes_a_row_for_every_check_and_none_errors_or_skips_what_a_cpu_can_run(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / JSON_FILE).read_text())["rows"]
    assert [row["name"] for row in rows] == list(CHECKS)
    # A FAIL row is a finding about the code under check (what the report is for), not a broken check.
    broken = {r["name"]: r["status"] for r in rows if r["status"].startswith(("error", "skipped"))}
    assert all(status.startswith(ALLOWED_SKIPS) for status in broken.values()), broken
    markdown = (tmp_path / MARKDOWN_FILE).read_text()
    assert all(f"| {name} |" in markdown for name in CHECKS)


def _report(tmp_path):
    return Report(tmp_path / "out", "smoke", {"hardware": {}, "packages": {"torch": "x"}, "git_commit": None})


def test_a_check_that_raises_becomes_an_error_row_with_its_figures_and_the_next_check_runs(tmp_path):
    report = _report(tmp_path)
    ctx = Context(SMOKE, tmp_path / "scratch", smoke=True)
    ctx.scratch.mkdir()

    def broken(ctx, figures):
        figures["measured"] = 1.5
        raise RuntimeError("device lost")

    run_check("broken", broken, ctx, report)
    run_check("fine", lambda ctx, figures: "ok", ctx, report)
    rows = json.loads((tmp_path / "out" / JSON_FILE).read_text())["rows"]
    assert [(r["name"], r["status"], r["figures"]) for r in rows] == [
        ("broken", "error: RuntimeError: device lost", {"measured": 1.5}),
        ("fine", "ok", {}),
    ]


def test_a_check_that_cannot_run_here_is_a_skipped_row_saying_why(tmp_path):
    report = _report(tmp_path)
    ctx = Context(SMOKE, tmp_path / "scratch", smoke=True)

    def needs_cuda(ctx, figures):
        raise Skip("needs CUDA")

    assert run_check("gpu only", needs_cuda, ctx, report).status == "skipped: needs CUDA"


def test_each_row_is_on_disk_as_soon_as_it_is_added_and_scratch_folders_are_deleted(tmp_path):
    report = _report(tmp_path)
    ctx = Context(SMOKE, tmp_path / "scratch", smoke=True)

    def writes_a_run_dir(ctx, figures):
        (ctx.folder("run") / "weights").write_text("x")
        return "ok"

    run_check("first", writes_a_run_dir, ctx, report)
    assert "| first | ok |" in (tmp_path / "out" / MARKDOWN_FILE).read_text()
    assert list(ctx.scratch.iterdir()) == []


def test_wmt_like_pairs_are_about_sixty_tokens_and_mlsum_like_ones_mostly_at_the_source_cap():
    wmt = sorted(len(e.input_ids) for e in lengths.encoded_examples(lengths.WMT, 501, 256_000))
    mlsum = lengths.encoded_examples(lengths.MLSUM, 300, 256_000)
    at_cap = sum(e.prompt_length == lengths.MLSUM.max_source_tokens for e in mlsum) / len(mlsum)
    assert 50 <= wmt[250] <= 70 and wmt[-1] <= 512
    assert 0.6 <= at_cap <= 0.9 and max(len(e.input_ids) for e in mlsum) <= 768


def test_the_dtype_probe_sees_what_a_linear_layer_and_the_lm_head_compute_in_under_autocast():
    import torch

    from scaling_repro.gpu_checks.models import build
    from scaling_repro.gpu_checks.probes import DtypeProbe

    model = build("tiny-xs", 50)
    with DtypeProbe(model) as probe, torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(input_ids=torch.tensor([[1, 5, 6, 7]]))
    assert probe.linear_name == "model.layers.0.self_attn.q_proj"
    assert probe.only("linear") == probe.only("lm_head") == {"bfloat16"}
    assert probe.head_rows == 4


def test_on_a_gpu_a_check_that_could_not_take_the_recipes_path_says_so_in_its_status(tmp_path):
    from scaling_repro.gpu_checks.runner import outcome

    figures = {"note": "the recipe uses zero2, run without DeepSpeed"}
    on_gpu, smoke = Context(SMOKE, tmp_path, smoke=False), Context(SMOKE, tmp_path, smoke=True)
    assert outcome([], figures, on_gpu) == "ok, but the recipe uses zero2, run without DeepSpeed"
    assert outcome([], figures, smoke) == "ok"
    assert outcome(["logits in float32"], figures, on_gpu) == "FAIL: logits in float32"
