"""A rank's RNG state file holds its own GPU's state only, so that a resume under another
``CUDA_VISIBLE_DEVICES`` count restores it instead of reporting the checkpoint damaged."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from scaling_repro.train import state_files
from scaling_repro.train.state_files import check_readable, restore_rng_state, rng_file, save_rng_state


class FakeCuda:
    """``torch.cuda``'s RNG calls on a machine with ``count`` GPUs, this process on ``current``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, count: int, current: int) -> None:
        self.count, self.current = count, current
        self.states = {i: torch.full((16,), i, dtype=torch.uint8) for i in range(count)}
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: current)
        monkeypatch.setattr(torch.cuda, "get_rng_state", self.get_rng_state)
        monkeypatch.setattr(torch.cuda, "set_rng_state", self.set_rng_state)
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [self.states[i] for i in range(count)])

    def get_rng_state(self, device=None) -> torch.Tensor:
        return self.states[self._index(device)].clone()

    def set_rng_state(self, state: torch.Tensor, device=None) -> None:
        self.states[self._index(device)] = state.clone()

    def _index(self, device) -> int:
        index = self.current if device is None or device == "cuda" else int(getattr(device, "index", device))
        if not 0 <= index < self.count:
            raise RuntimeError(f"invalid device ordinal {index}")
        return index


def _write_scheduler(directory) -> None:
    (directory / state_files.SCHEDULER_FILE).write_text("{}")


def test_a_rank_saves_the_state_of_its_own_gpu_only(tmp_path, monkeypatch):
    FakeCuda(monkeypatch, count=8, current=3)
    path = save_rng_state(tmp_path, rank=3, accelerator_step=0)
    with safe_open(str(path), framework="pt") as handle:
        keys = set(handle.keys())
        saved = handle.get_tensor(state_files.CUDA_KEY)
    assert keys == {"python", "numpy", "torch", state_files.CUDA_KEY}
    assert saved.tolist() == [3] * 16


def test_a_resume_with_fewer_visible_gpus_restores_the_ranks_own_state(tmp_path, monkeypatch):
    FakeCuda(monkeypatch, count=8, current=0)
    save_rng_state(tmp_path, rank=0, accelerator_step=5)
    _write_scheduler(tmp_path)
    fewer = FakeCuda(monkeypatch, count=1, current=0)
    fewer.states[0] = torch.full((16,), 99, dtype=torch.uint8)
    (tmp_path / state_files.DEEPSPEED_CHECKPOINT_ID).mkdir()
    check_readable(tmp_path, world_size=1, deepspeed=True)  # no DamagedCheckpointError for the RNG file
    assert restore_rng_state(tmp_path, rank=0) == 5
    assert fewer.states[0].tolist() == [0] * 16  # device 0's state as saved


def test_a_file_with_every_visible_gpus_state_restores_only_the_current_devices(tmp_path, monkeypatch):
    tensors = {
        "python": torch.tensor(__import__("random").getstate()[1], dtype=torch.int64),
        "numpy": torch.zeros(624, dtype=torch.int64),
        "torch": torch.get_rng_state(),
        **{f"cuda_{i}": torch.full((16,), 10 + i, dtype=torch.uint8) for i in range(8)},
    }
    meta = {
        "python_version": 3,
        "python_gauss": None,
        "numpy_kind": "MT19937",
        "numpy_pos": 624,
        "numpy_has_gauss": 0,
        "numpy_gauss": 0.0,
        "cuda_devices": 8,
        "accelerator_step": 2,
    }
    save_file(tensors, str(rng_file(tmp_path, 0)), metadata={"state": json.dumps(meta)})
    cuda = FakeCuda(monkeypatch, count=2, current=1)
    assert restore_rng_state(tmp_path, rank=0) == 2
    assert cuda.states[1].tolist() == [11] * 16
    assert cuda.states[0].tolist() == [0] * 16  # the other device is left alone
