"""A step checkpoint resumes only with the number of processes that wrote it: another number is
refused up front, on every rank, with a message saying what to do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scaling_repro.train.checkpoint import checkpoint_dir, resumable_checkpoint
from scaling_repro.train.distributed import deepspeed_available
from scaling_repro.train.state_files import STATE_FILE, WORLD_SIZE_KEY, WorldSizeChangedError, recorded_world_size
from tests.helpers.crash_resume import Crash, curves, run
from tests.helpers.paths import HELPERS, pythonpath

WORKER = HELPERS / "world_size_worker.py"


@pytest.fixture(scope="module")
def one_process_checkpoint(tmp_path_factory) -> Path:
    """A run directory whose latest checkpoint (step 3) was written by one process."""
    run_dir = tmp_path_factory.mktemp("one") / "run"
    with pytest.raises(Crash):
        run(run_dir, crash_at=4)
    return run_dir


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def latest_step(run_dir: Path) -> Path:
    return max(checkpoint_dir(run_dir).glob("step-*"))


def set_recorded(run_dir: Path, world_size: int | None) -> Path:
    """Rewrite the latest checkpoint's recorded world size (None: as written before it was recorded)."""
    path = latest_step(run_dir)
    state = json.loads((path / STATE_FILE).read_text())
    state.pop(WORLD_SIZE_KEY)
    if world_size is not None:
        state[WORLD_SIZE_KEY] = world_size
        for rank in range(1, world_size):  # the RNG states of the other ranks, as they would write them
            shutil.copy(path / "rng_state_0.safetensors", path / f"rng_state_{rank}.safetensors")
    (path / STATE_FILE).write_text(json.dumps(state))
    return path


def test_a_checkpoint_records_the_number_of_processes_that_wrote_it(one_process_checkpoint):
    assert recorded_world_size(latest_step(one_process_checkpoint)) == 1


def test_resuming_with_fewer_processes_is_refused_naming_both_counts_and_the_way_out(one_process_checkpoint, tmp_path):
    run_dir = copy_of(one_process_checkpoint, tmp_path)
    path = set_recorded(run_dir, 2)
    with pytest.raises(WorldSizeChangedError) as refused:
        run(run_dir)
    message = str(refused.value)
    assert "\n" not in message
    assert f"cannot resume {path} with 1 process(es): it was written by 2" in message
    assert "rerun with 2 processes" in message and f"delete {path.parent} to restart the run" in message
    assert "RNG stream" in message and "DeepSpeed" not in message
    assert path.is_dir() and not (run_dir / "result.json").exists()  # nothing lost, nothing trained


def test_resuming_with_more_processes_is_refused_instead_of_restarting_as_damaged(one_process_checkpoint):
    # Before the world size was recorded, the missing RNG state of rank 1 made this checkpoint
    # "damaged" and the run restarted from step 0.
    with pytest.raises(WorldSizeChangedError, match="with 2 process.*written by 1"):
        resumable_checkpoint(one_process_checkpoint, world_size=2, deepspeed=False)


def test_a_checkpoint_without_a_recorded_world_size_still_resumes_exactly(
    one_process_checkpoint, tmp_path, uninterrupted
):
    run_dir = copy_of(one_process_checkpoint, tmp_path)
    set_recorded(run_dir, None)
    result = run(run_dir)
    assert result.resumed_from_step == 3
    expected_curves = uninterrupted[1]
    assert curves(run_dir)[0] == pytest.approx(expected_curves[0], abs=1e-6)
    assert curves(run_dir)[1] == pytest.approx(expected_curves[1], abs=1e-6)


def test_an_older_deepspeed_checkpoint_is_refused_by_its_count_of_optimizer_partitions(
    one_process_checkpoint, tmp_path
):
    run_dir = copy_of(one_process_checkpoint, tmp_path)
    path = set_recorded(run_dir, None)
    (path / "pytorch_model").mkdir()
    for rank in range(4):
        (path / "pytorch_model" / f"bf16_zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").write_bytes(b"")
    with pytest.raises(WorldSizeChangedError, match="written by 4 and its DeepSpeed ZeRO optimizer state") as refused:
        resumable_checkpoint(run_dir, world_size=8, deepspeed=True)
    assert "zero_to_fp32.py recovers the weights only" in str(refused.value)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": pythonpath(), "OMP_NUM_THREADS": "1"}


def _worker(mode: str, out: Path, processes: int, *extra: str) -> None:
    launch = [sys.executable]
    if processes > 1:
        launch += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    proc = subprocess.run(
        [*launch, str(WORKER), mode, str(out), *extra], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def _ranks(out: Path, processes: int) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(processes)]


@pytest.mark.slow
def test_every_rank_of_a_torchrun_refuses_a_one_process_checkpoint(one_process_checkpoint, tmp_path):
    shutil.copytree(one_process_checkpoint, tmp_path / "run")
    _worker("resume", tmp_path, 2)
    for got in _ranks(tmp_path, 2):
        assert got["error"] == "WorldSizeChangedError" and "with 2 process(es): it was written by 1" in got["message"]


DEEPSPEED, DEEPSPEED_REASON = deepspeed_available()


@pytest.mark.slow
@pytest.mark.skipif(not DEEPSPEED, reason=f"DeepSpeed ZeRO test needs deepspeed: {DEEPSPEED_REASON}")
def test_a_zero2_checkpoint_of_two_processes_is_refused_by_one_before_deepspeed_loads_it(tmp_path):
    _worker("write", tmp_path, 2, "zero2")
    assert recorded_world_size(latest_step(tmp_path / "run")) == 2
    _worker("resume", tmp_path, 1, "zero2")
    (got,) = _ranks(tmp_path, 1)
    assert got["error"] == "WorldSizeChangedError", got  # not DeepSpeed's ZeRORuntimeException
    assert "written by 2 and its DeepSpeed ZeRO optimizer state is partitioned" in got["message"]
