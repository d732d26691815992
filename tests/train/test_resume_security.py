"""Run directories live on shared filesystems: nothing a resume reads from them may run code.
A pickle planted in any file of the resume path is refused, never unpickled."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from scaling_repro.train.checkpoint import DamagedCheckpointError, load_best_weights
from tests.helpers.crash_resume import Crash, run
from tests.helpers.train_helpers import tiny_llama, wrap

STEP = "checkpoints/step-00000003"
# Every file a resume from STEP reads, and the pickles Accelerate would load from it.
PLANTED = [
    f"{STEP}/trainer_state.json",
    f"{STEP}/scheduler.json",
    f"{STEP}/rng_state_0.safetensors",
    f"{STEP}/model.safetensors",
    f"{STEP}/optimizer.bin",
    f"{STEP}/random_states_0.pkl",
    f"{STEP}/custom_checkpoint_0.pkl",
    f"{STEP}/pytorch_model.bin",
    f"{STEP}/scaler.pt",
    f"{STEP}/sampler.bin",
    "train_log.jsonl",
]


class Planted:
    """Unpickling it creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def plant(path: Path, marker: Path) -> None:
    torch.save(Planted(marker), path)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """A run directory whose only resumable checkpoint is at step 3."""
    run_dir = tmp_path_factory.mktemp("interrupted")
    with pytest.raises(Crash):
        run(run_dir, crash_at=5)
    assert (run_dir / STEP).is_dir()
    return run_dir


@pytest.mark.parametrize("target", PLANTED)
def test_a_planted_pickle_is_never_unpickled_on_resume(tmp_path, interrupted, uninterrupted, target):
    run_dir, marker = tmp_path / "run", tmp_path / "marker"
    shutil.copytree(interrupted, run_dir)
    plant(run_dir / target, marker)
    result = run(run_dir)
    assert not marker.exists()
    expected = uninterrupted[0]
    assert (result.steps, result.best_step, result.tokens_seen) == (
        expected.steps,
        expected.best_step,
        expected.tokens_seen,
    )
    assert result.best_dev_loss == pytest.approx(expected.best_dev_loss, abs=1e-6)


def test_a_finished_checkpoint_holds_no_pickles_but_the_optimizer_state(uninterrupted):
    checkpoints = uninterrupted[0].best_checkpoint.parent
    names = {p.name for p in checkpoints.rglob("*") if p.is_file()}
    assert "optimizer.bin" in names and not [name for name in names if name.endswith((".pkl", ".pt"))]


@pytest.mark.parametrize("name", ["adapter_model.safetensors", "best.json"])
def test_a_planted_pickle_in_the_best_checkpoint_is_refused(tmp_path, name):
    result, marker = run(tmp_path / "run"), tmp_path / "marker"
    plant(result.best_checkpoint / name, marker)
    with pytest.raises(DamagedCheckpointError, match=name):
        load_best_weights(wrap(tiny_llama(), "lora", dropout=0.1), result.best_checkpoint)
    assert not marker.exists()
