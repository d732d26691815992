"""Damaged resumable state: a rerun names the damaged file, resumes from an intact earlier
checkpoint or restarts, and still ends as an uninterrupted run; leftovers of a kill go."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from scaling_repro.train.checkpoint import DamagedCheckpointError, checkpoint_dir, load_best_weights
from tests.helpers.crash_resume import Crash, curves, run
from tests.helpers.train_helpers import tiny_llama, wrap


def step_dir(run_dir: Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"step-{step:08d}"


def step_dirs(run_dir: Path) -> list[str]:
    return sorted(p.name for p in checkpoint_dir(run_dir).glob("step-*"))


def interrupt(run_dir: Path, crash_at: int) -> None:
    with pytest.raises(Crash):
        run(run_dir, crash_at=crash_at)


def with_steps_3_and_6(run_dir: Path, parked: Path) -> None:
    """Leave ``run_dir`` with complete checkpoints at steps 3 and 6 (as after a kill inside
    the publish of step 6), then crash at step 7."""
    interrupt(run_dir, crash_at=4)
    shutil.copytree(step_dir(run_dir, 3), parked)
    interrupt(run_dir, crash_at=7)
    shutil.copytree(parked, step_dir(run_dir, 3))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def assert_uninterrupted(run_dir: Path, result, uninterrupted) -> None:
    expected_result, expected_curves = uninterrupted
    assert curves(run_dir)[0] == pytest.approx(expected_curves[0], abs=1e-6)
    assert curves(run_dir)[1] == pytest.approx(expected_curves[1], abs=1e-6)
    assert (result.steps, result.best_step) == (expected_result.steps, expected_result.best_step)


def warnings_text(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_truncated_weights_of_the_latest_checkpoint_fall_back_to_the_previous_one(tmp_path, uninterrupted, caplog):
    run_dir = tmp_path / "run"
    with_steps_3_and_6(run_dir, tmp_path / "parked")
    damaged = step_dir(run_dir, 6) / "model.safetensors"
    truncate(damaged)
    with caplog.at_level(logging.WARNING):
        result = run(run_dir)
    assert result.resumed_from_step == 3
    assert str(damaged) in warnings_text(caplog) and "step-00000003" in warnings_text(caplog)
    assert_uninterrupted(run_dir, result, uninterrupted)


def test_a_garbled_trainer_state_without_an_earlier_checkpoint_restarts_the_run(tmp_path, uninterrupted, caplog):
    interrupt(tmp_path, crash_at=5)
    damaged = step_dir(tmp_path, 3) / "trainer_state.json"
    damaged.write_text('{"step": 3, "examp', encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        result = run(tmp_path)
    assert result.resumed_from_step is None
    assert str(damaged) in warnings_text(caplog) and "restart" in warnings_text(caplog)
    assert_uninterrupted(tmp_path, result, uninterrupted)


def test_a_checkpoint_without_its_rng_state_is_not_resumed_inexactly(tmp_path, uninterrupted, caplog):
    interrupt(tmp_path, crash_at=5)
    rng_files = [p for p in step_dir(tmp_path, 3).iterdir() if "rng" in p.name or "random_states" in p.name]
    assert rng_files
    for path in rng_files:
        path.unlink()
    with caplog.at_level(logging.WARNING):
        result = run(tmp_path)
    assert_uninterrupted(tmp_path, result, uninterrupted)  # LoRA dropout draws from that RNG
    assert str(rng_files[0].parent) in warnings_text(caplog)


def test_a_kill_inside_the_last_publish_leaves_one_step_checkpoint_after_the_next_start(tmp_path):
    interrupt(tmp_path, crash_at=7)
    shutil.copytree(step_dir(tmp_path, 6), tmp_path / "parked")
    run(tmp_path)
    # The kill landed after step 8 was renamed into place, before step 6 was deleted.
    shutil.copytree(tmp_path / "parked", step_dir(tmp_path, 6))
    assert run(tmp_path).resumed_from_step == 8
    assert step_dirs(tmp_path) == ["step-00000008"]


@pytest.mark.parametrize("name", ["adapter_model.safetensors", "best.json"])
def test_a_damaged_best_checkpoint_error_names_the_file(tmp_path, name):
    result = run(tmp_path)
    damaged = result.best_checkpoint / name
    truncate(damaged)
    with pytest.raises(DamagedCheckpointError, match=str(damaged)):
        load_best_weights(wrap(tiny_llama(), "lora", dropout=0.1), result.best_checkpoint)
