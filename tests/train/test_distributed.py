"""Multi-process training (torchrun, gloo on CPU) and DeepSpeed ZeRO on CPU, in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scaling_repro.train.distributed import deepspeed_available
from scaling_repro.train.loop import train
from scaling_repro.train.metrics_log import read_log
from tests.helpers.paths import HELPERS, pythonpath
from tests.helpers.train_dist_worker import DDP_RUN, DEV, TRAIN
from tests.helpers.train_helpers import collate, tiny_llama, train_config, wrap

WORKER = HELPERS / "train_dist_worker.py"

pytestmark = pytest.mark.slow  # every test trains in 2-process torchrun or DeepSpeed subprocesses


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": pythonpath(), "OMP_NUM_THREADS": "1"}


def _one_process_curves(run_dir: Path, kind: str = "full", **overrides) -> dict:
    spec = {**DDP_RUN, **overrides}
    train(
        wrap(tiny_llama(), kind),
        TRAIN,
        DEV,
        collate,
        run_dir,
        config=train_config(**spec["config"]),
        lr=spec["lr"],
        batch_size=spec["batch_size"],
        seed=0,
    )
    return {
        "train": [r["train_loss"] for r in read_log(run_dir, "train")],
        "dev": [r["dev_loss"] for r in read_log(run_dir, "eval")],
    }


def test_two_process_torchrun_averages_gradients_and_matches_one_process(tmp_path):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        "ddp",
        str(tmp_path),
    ]
    proc = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "ddp.json").read_text())
    assert got["world_size"] == 2 and got["world"] == 2 and "MULTI_CPU" in got["distributed_type"]
    assert got["grad"] == pytest.approx(1.5)  # mean of 1 and 2: averaged, not summed or local

    # Same global batch (8) on one process: micro-batch 4 with 2 accumulation steps.
    expected = _one_process_curves(tmp_path / "single")
    assert got["train"] == pytest.approx(expected["train"], abs=1e-5)
    assert got["dev"] == pytest.approx(expected["dev"], abs=1e-5)


def test_two_process_lora_resume_ends_as_the_uninterrupted_run(tmp_path):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        "ddp_resume",
        str(tmp_path),
    ]
    proc = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "ddp_resume.json").read_text())
    assert got["resumed_from"] == 2
    # Dropout on each rank draws from that rank's restored RNG.
    assert got["resumed"]["train"] == pytest.approx(got["whole"]["train"], abs=1e-6)
    assert got["resumed"]["dev"] == pytest.approx(got["whole"]["dev"], abs=1e-6)


DEEPSPEED, DEEPSPEED_REASON = deepspeed_available()


@pytest.mark.skipif(not DEEPSPEED, reason=f"DeepSpeed ZeRO test needs deepspeed: {DEEPSPEED_REASON}")
def test_deepspeed_zero_on_cpu_trains_resumes_lora_and_saves_full_weights(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(WORKER), "zero", str(tmp_path)], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "zero.json").read_text())
    lora, resumed = got["zero2_lora"], got["zero2_lora_resumed"]
    # ZeRO-2 follows the plain loop's curve (loss scaling, accumulation, clipping, schedule).
    # AdamW is elementwise; Adafactor is not: ZeRO flattens parameters, so Adafactor's
    # factored moments and per-matrix update clipping change (see train.distributed).
    plain = _one_process_curves(
        tmp_path / "plain",
        "lora",
        lr=3e-2,
        batch_size=4,
        config=dict(max_steps=4, eval_every=2, log_every=1, micro_batch_size=2, optimizer="adamw"),
    )
    assert got["zero2_lora_adamw"]["train"] == pytest.approx(plain["train"], abs=1e-5)
    # A LoRA run resumed from its DeepSpeed checkpoint ends as the uninterrupted one.
    assert resumed["resumed_from"] == 2
    assert resumed["train"] == pytest.approx(lora["train"], abs=1e-6)
    assert resumed["dev"] == pytest.approx(lora["dev"], abs=1e-6)
    # ZeRO-3 saves gathered full weights (full model) and the whole soft prompt.
    for name in ("zero3_full", "zero3_prompt"):
        assert got[name]["best_numel"] == got[name]["trainable"] > 0
        assert all(loss == loss for loss in got[name]["train"])
