"""The parts of a resumable checkpoint that this package writes as data, and the check that a
checkpoint can be read before any of it is loaded.

Run directories live on shared filesystems, so nothing read from them may run code: the LR
schedule is JSON and the RNG states are safetensors with JSON metadata (Accelerate would
pickle both; its RNG pickle is deleted after saving). Weights are safetensors and the
optimizer state is a ``torch.save`` file that is only ever read with ``weights_only=True``.

    step-00001000/scheduler.json               LR schedule (``state_dict`` of the LambdaLR)
    step-00001000/rng_state_<rank>.safetensors python, numpy, torch RNG of one rank: CPU and its own GPU
    step-00001000/trainer_state.json           loop counters + ``world_size``: the processes that wrote it

A checkpoint resumes only with the number of processes that wrote it (:func:`check_world_size`):
a DeepSpeed ZeRO checkpoint holds the optimizer state partitioned over its processes (DeepSpeed
refuses another number deep inside loading), and with DDP every rank restores its own RNG
stream, which another number of processes would draw differently (dropout masks), so the run
would not end as an uninterrupted one. Checkpoints written before the number was recorded
resume as before.
"""

from __future__ import annotations

import json
import pickle
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scaling_repro.errors import UserError, one_line
from scaling_repro.fileio import atomic_write_json

STATE_FILE = "trainer_state.json"
WORLD_SIZE_KEY = "world_size"  # in STATE_FILE, beside the loop's counters
SCHEDULER_FILE = "scheduler.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.bin"
SCALER_FILE = "scaler.pt"
DEEPSPEED_CHECKPOINT_ID = "pytorch_model"  # the ckpt_id Accelerate gives DeepSpeed: its subdirectory of a checkpoint
ACCELERATE_RNG_FILE = "random_states_{rank}.pkl"
CUDA_KEY = "cuda"  # in a rank's RNG state file: the state of the GPU that rank runs on


class DamagedCheckpointError(UserError):
    """A checkpoint file that cannot be read (truncated, garbled, or not what it should be);
    the message names the file."""


class WorldSizeChangedError(UserError):
    """A step checkpoint written by another number of processes than the run now has."""


def recorded_world_size(directory: Path) -> int | None:
    """Return the number of processes that wrote the checkpoint ``directory``, or None when it
    was written before that was recorded; DamagedCheckpointError when its state is unreadable.
    For such an older DeepSpeed checkpoint it is the number of ZeRO optimizer partitions."""
    directory = Path(directory)
    saved = read_json_object(directory / STATE_FILE).get(WORLD_SIZE_KEY)
    if type(saved) is int and saved > 0:
        return saved
    ranks = [
        int(m.group(1))
        for p in (directory / DEEPSPEED_CHECKPOINT_ID).glob("*zero_pp_rank_*_optim_states.pt")
        if (m := re.search(r"zero_pp_rank_(\d+)_", p.name))
    ]
    return max(ranks) + 1 if ranks else None


def check_world_size(directory: Path, world_size: int, deepspeed: bool) -> None:
    """Raise WorldSizeChangedError, one line saying what to do, when the checkpoint
    ``directory`` was written by another number of processes than ``world_size``."""
    directory = Path(directory)
    saved = recorded_world_size(directory)
    if saved is None or saved == world_size:
        return
    if deepspeed or (directory / DEEPSPEED_CHECKPOINT_ID).is_dir():
        why = (
            f"its DeepSpeed ZeRO optimizer state is partitioned over {saved} processes and DeepSpeed cannot "
            f"repartition it (its zero_to_fp32.py recovers the weights only, not the optimizer state)"
        )
    else:
        why = (
            f"each of its processes saved its own RNG stream, which {world_size} process(es) would draw "
            f"differently (dropout), so the run would not end as an uninterrupted one"
        )
    raise WorldSizeChangedError(
        f"cannot resume {directory} with {world_size} process(es): it was written by {saved} and {why}; rerun "
        f"with {saved} processes in all (torchrun --nnodes x --nproc_per_node; launch.gpus_per_node in a "
        f"sweep), or delete {directory.parent} to restart the run from step 0"
    )


def rng_file(directory: Path, rank: int) -> Path:
    """Return the path of rank ``rank``'s RNG state in a checkpoint directory."""
    return Path(directory) / f"rng_state_{rank}.safetensors"


def save_rng_state(directory: Path, rank: int, accelerator_step: int) -> Path:
    """Write this process's python, numpy and torch RNG states (and Accelerate's micro-step
    counter) to ``rng_file(directory, rank)``; return its path.

    Of the GPUs only this process's own (``torch.cuda.current_device()``) is saved: the others
    belong to other ranks, and a resume under another ``CUDA_VISIBLE_DEVICES`` sees another
    number of them."""
    from safetensors.torch import save_file

    py_version, py_state, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    tensors = {
        "python": torch.tensor(py_state, dtype=torch.int64),
        "numpy": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        tensors[CUDA_KEY] = torch.cuda.get_rng_state(torch.cuda.current_device())
    meta = {
        "python_version": py_version,
        "python_gauss": py_gauss,
        "numpy_kind": np_kind,
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "cuda_devices": 0,  # the count of files that held every visible GPU's state; read by older versions
        "accelerator_step": accelerator_step,
    }
    path = rng_file(directory, rank)
    save_file(tensors, str(path), metadata={"state": json.dumps(meta)})
    return path


def _read_rng_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads((handle.metadata() or {})["state"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    missing = {"python", "numpy", "torch", *(f"cuda_{i}" for i in range(meta["cuda_devices"]))} - set(tensors)
    if missing:
        raise ValueError(f"no {sorted(missing)} state")
    return tensors, meta


def _own_cuda_state(tensors: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """This process's GPU RNG state in a state file: its one saved GPU's, or, in a file that
    holds every visible GPU's (``cuda_<i>``), that of the device this process runs on."""
    if CUDA_KEY in tensors:
        return tensors[CUDA_KEY]
    return tensors.get(f"cuda_{torch.cuda.current_device()}")


def restore_rng_state(directory: Path, rank: int) -> int:
    """Set this process's RNGs (CPU and its own GPU) from ``rng_file(directory, rank)``; return
    the saved Accelerate micro-step counter."""
    tensors, meta = _read_rng_state(rng_file(directory, rank))
    random.setstate((meta["python_version"], tuple(tensors["python"].tolist()), meta["python_gauss"]))
    np.random.set_state(
        (
            meta["numpy_kind"],
            tensors["numpy"].numpy().astype(np.uint32),
            meta["numpy_pos"],
            meta["numpy_has_gauss"],
            meta["numpy_gauss"],
        )
    )
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        cuda = _own_cuda_state(tensors)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, torch.cuda.current_device())
    return int(meta["accelerator_step"])


def drop_accelerate_rng_pickle(directory: Path, rank: int) -> None:
    """Delete the RNG pickle ``accelerator.save_state`` wrote for ``rank`` (saved as data by
    :func:`save_rng_state` instead)."""
    (Path(directory) / ACCELERATE_RNG_FILE.format(rank=rank)).unlink(missing_ok=True)


def save_scheduler(directory: Path, scheduler) -> Path:
    """Write the LR scheduler's ``state_dict`` as JSON; return the path."""
    path = Path(directory) / SCHEDULER_FILE
    atomic_write_json(path, scheduler.state_dict())
    return path


def load_scheduler(directory: Path, scheduler) -> None:
    """Restore the LR scheduler saved by :func:`save_scheduler`."""
    scheduler.load_state_dict(json.loads((Path(directory) / SCHEDULER_FILE).read_text(encoding="utf-8")))


def read_json_object(path: Path) -> dict[str, Any]:
    """Return the JSON object in ``path``; DamagedCheckpointError naming it when it is missing,
    not JSON, or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DamagedCheckpointError(f"{path}: {_reason(err)}") from None
    if not isinstance(data, dict):
        raise DamagedCheckpointError(f"{path}: not a JSON object")
    return data


def check_readable(directory: Path, world_size: int, deepspeed: bool) -> None:
    """Raise DamagedCheckpointError naming the first file of the resumable checkpoint
    ``directory`` that cannot be read, or a pickle in it; return None when all can.

    Reads headers and metadata only (the optimizer state memory-mapped), so a damaged
    checkpoint is found before any state is loaded into the model or optimizer.
    """
    directory = Path(directory)
    pickles = sorted(p.name for p in directory.glob("*.pkl"))
    if pickles:
        raise DamagedCheckpointError(
            f"{directory / pickles[0]}: a pickle, which is never loaded (it could run code); "
            f"this checkpoint was written by an older version or altered"
        )
    read_json_object(directory / SCHEDULER_FILE)
    for rank in range(world_size):
        _read(rng_file(directory, rank), _read_rng_state)
    if deepspeed:
        if not (directory / DEEPSPEED_CHECKPOINT_ID).is_dir():
            raise DamagedCheckpointError(f"{directory / DEEPSPEED_CHECKPOINT_ID}: missing")
        return
    _read(directory / MODEL_FILE, _read_safetensors_header)
    _read(directory / OPTIMIZER_FILE, _read_torch_file)
    if (directory / SCALER_FILE).exists():
        _read(directory / SCALER_FILE, _read_torch_file)


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Return the tensors of the safetensors file ``path``; DamagedCheckpointError naming it
    when it cannot be read."""
    from safetensors.torch import load_file

    return _read(Path(path), lambda file: load_file(str(file)))


def check_safetensors(path: Path) -> None:
    """Return when the safetensors file ``path`` has a readable header and the size it
    declares; DamagedCheckpointError naming it otherwise. Reads no tensor data."""
    _read(Path(path), _read_safetensors_header)


def _read(path: Path, reader: Callable[[Path], Any]) -> Any:
    if not path.is_file():
        raise DamagedCheckpointError(f"{path}: missing")
    try:
        return reader(path)
    except Exception as err:  # any failure to read it means the file is damaged
        raise DamagedCheckpointError(f"{path}: {_reason(err)}") from None


def _read_safetensors_header(path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        handle.keys()


def _read_torch_file(path: Path) -> None:
    torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def _reason(err: BaseException) -> str:
    if isinstance(err, pickle.UnpicklingError):
        return "holds objects other than tensors and plain data (refused: unpickling them could run code)"
    return one_line(err)
