"""The weights a finished run evaluates: on which device, in which dtype, read how.

Evaluation runs on the device each process trained on, on the weights in the dtype training
held them in (DeepSpeed bf16: bfloat16; bf16 autocast over float32 weights: float32), one copy
of them: the best checkpoint is copied into the model's own parameters tensor by tensor, and
Accelerate's float32 output wrapper comes off the trained model (evaluation enters the
training precision's autocast itself). Nothing here imports torch at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def evaluation_device() -> torch.device:
    """Return the device this process trains on: its GPU (``LOCAL_RANK``) when there is one."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def free_accelerator_memory() -> None:
    """Collect garbage and return the accelerator's cached memory to the device."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def trained_dtype(model: torch.nn.Module) -> torch.dtype:
    """Return the dtype of ``model``'s floating-point weights as trained (DeepSpeed bf16 holds
    them in bfloat16; bf16 autocast over float32 weights keeps float32)."""
    return next(p.dtype for p in model.parameters() if p.dtype.is_floating_point)


def drop_precision_wrapper(model: torch.nn.Module) -> None:
    """Remove what ``accelerator.prepare`` put on ``model.forward`` under mixed precision: its
    autocast, and its conversion of every output to float32, a float32 copy of all logits
    (evaluation enters the training precision's autocast itself). No-op on a model it left
    as it was."""
    original = model.__dict__.pop("_original_forward", None)
    if original is None:
        return
    if getattr(original, "__func__", None) is type(model).forward:
        model.__dict__.pop("forward", None)  # the class's own forward again
    else:
        model.forward = original


def load_full_weights(model: torch.nn.Module, directory: Path) -> None:
    """Load a ``save_pretrained`` directory into ``model``'s own parameters, tensor by tensor,
    on their device and in their dtype: no second copy of the model is built. Tied weights
    are saved once and read once.

    A checkpoint whose names differ from the model's (a class that renames keys when saving,
    e.g. GPT-NeoX's ``embed_out``) is read through the model class's own loading instead, which
    undoes the renames whatever the transformers version: a second copy, in the model's dtype."""
    files = sorted(Path(directory).glob("*.safetensors"))
    plan = _streaming_plan(model, files)
    if plan is None:
        _load_through_class(model, directory)
        return
    import torch
    from safetensors import SafetensorError, safe_open

    from scaling_repro.errors import one_line
    from scaling_repro.train.state_files import DamagedCheckpointError

    try:
        with torch.no_grad():
            for file, names in plan.items():
                with safe_open(str(file), framework="pt") as handle:
                    for name, target in names:
                        target.copy_(handle.get_tensor(name))
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        raise DamagedCheckpointError(f"best checkpoint {directory}: {one_line(err)}") from None


def _streaming_plan(model: torch.nn.Module, files: list[Path]) -> dict[Path, list[tuple[str, torch.Tensor]]] | None:
    """Return, per safetensors file, (saved name, the model's tensor it loads into) for every
    tensor of ``model``; None when the saved names are not the model's own (see
    :func:`_load_full_weights`)."""
    from safetensors import safe_open

    where: dict[str, Path] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            where.update((key, file) for key in handle.keys())
    targets = model.state_dict(keep_vars=True)
    if set(where) - set(targets):
        return None
    plan: dict[Path, list[tuple[str, torch.Tensor]]] = {}
    loaded: set[int] = set()
    for name, tensor in targets.items():
        if name in where:
            plan.setdefault(where[name], []).append((name, tensor))
            loaded.add(id(tensor))
    if any(id(tensor) not in loaded for tensor in targets.values()):
        return None  # a tensor no saved name loads: renamed, or not saved
    return plan


def _load_through_class(model: torch.nn.Module, directory: Path) -> None:
    from scaling_repro.train.distributed import whole_construction
    from scaling_repro.train.state_files import DamagedCheckpointError

    dtype = next(model.parameters()).dtype
    try:
        with whole_construction():  # not partitioned by a ZeRO-3 config still set in this process
            saved = type(model).from_pretrained(str(directory), config=model.config, dtype=dtype, weights_only=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise DamagedCheckpointError(f"best checkpoint {directory}: {str(err).splitlines()[0]}") from None
    model.load_state_dict(saved.state_dict(), strict=True)
