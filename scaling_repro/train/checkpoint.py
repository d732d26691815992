"""Checkpoints of a run directory: resumable state and the best weights by dev loss.

    run_dir/checkpoints/step-00001000/   resumable: Accelerate state (model or trainable
                                          weights, optimizer), LR schedule and RNG of every
                                          rank as data (see :mod:`.state_files`)
                                          + trainer_state.json (step, data position, best-so-far)
    run_dir/checkpoints/best-00000800/    best weights by dev loss: ``save_pretrained`` of the
                                          model (full) or adapter (PEFT) + best.json

Every directory is written under a ``.tmp-`` name and renamed when complete, so a ``kill -9``
leaves either the old checkpoint or the new one. Only the latest ``step-`` and the best
``best-`` directory are kept; what a kill leaves besides them (a half-written directory, an
older one not yet deleted) goes when the run starts again. A resume first checks that every
file of the checkpoint can be read, and passes over a damaged one to an older intact one, or
to a restart of the run: either ends as an uninterrupted run would. A checkpoint written by
another number of processes is refused before anything is loaded (see
:func:`.state_files.check_world_size`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scaling_repro.errors import UserError, one_line
from scaling_repro.fileio import atomic_write_json
from scaling_repro.train.eval_weights import load_full_weights
from scaling_repro.train.state_files import (
    STATE_FILE,
    WORLD_SIZE_KEY,
    DamagedCheckpointError,
    check_readable,
    check_safetensors,
    check_world_size,
    drop_accelerate_rng_pickle,
    load_safetensors,
    load_scheduler,
    read_json_object,
    restore_rng_state,
    save_rng_state,
    save_scheduler,
)

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
BEST_FILE = "best.json"


@dataclass
class TrainerState:
    """Loop counters that a resume needs besides the Accelerate state."""

    step: int = 0
    examples_seen: int = 0  # position in the seeded example stream (global, all ranks)
    tokens_seen: int = 0  # input tokens (without padding) consumed by training, all ranks
    target_tokens_seen: int = 0
    best_step: int | None = None
    best_dev_loss: float | None = None
    evals_since_best: int = 0
    wall_seconds: float = 0.0  # whole run, summed over resumed sessions
    train_seconds: float = 0.0  # in training steps only (the throughput denominator)
    timed_tokens: int = 0  # tokens of the steps counted in train_seconds
    timed_flops: float = 0.0  # model FLOPs of those steps (see throughput.flops_per_token)
    stopped_early: bool = False
    interval_loss: float = 0.0  # summed step losses since the last train log line
    interval_steps: int = 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainerState:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def _step_of(path: Path) -> int:
    return int(path.name.rsplit("-", 1)[1])


def _complete(prefix: str, run_dir: Path, marker: str) -> list[Path]:
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.glob(f"{prefix}-*") if p.is_dir() and (p / marker).is_file()]
    return sorted(found, key=_step_of)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """Return the newest complete resumable checkpoint of ``run_dir``, or None."""
    found = _complete("step", run_dir, STATE_FILE)
    return found[-1] if found else None


def best_checkpoint(run_dir: Path) -> Path | None:
    """Return the best-weights directory of ``run_dir`` (see :func:`save_best`), or None."""
    found = _complete("best", run_dir, BEST_FILE)
    return found[-1] if found else None


def resumable_checkpoint(run_dir: Path, world_size: int, deepspeed: bool) -> tuple[Path | None, list[str]]:
    """Return (the newest complete step checkpoint of ``run_dir`` whose files all read, or
    None; why each newer complete one was passed over: a damaged file, named). Raise
    WorldSizeChangedError when that checkpoint was written by another number of processes
    (checked first: which files it has depends on that number)."""
    damaged = []
    for path in reversed(_complete("step", run_dir, STATE_FILE)):
        try:
            read_trainer_state(path)
            check_world_size(path, world_size, deepspeed)
            check_readable(path, world_size, deepspeed)
        except DamagedCheckpointError as err:
            damaged.append(str(err))
            continue
        return path, damaged
    return None, damaged


def read_trainer_state(path: Path) -> TrainerState:
    """Return the TrainerState of the checkpoint directory ``path``; DamagedCheckpointError
    naming the file when it is unreadable."""
    file = Path(path) / STATE_FILE
    data = read_json_object(file)
    if not all(isinstance(data.get(key), int) for key in ("step", "examples_seen")):
        raise DamagedCheckpointError(f"{file}: no step and examples_seen counts")
    return TrainerState.from_json(data)


def clean_partial(run_dir: Path, best_step: int | None, resumed_step: int | None = None) -> None:
    """Remove what a killed run leaves: half-written ``.tmp-`` directories, best weights
    other than ``best_step``'s (written after its last resumable checkpoint) and step
    checkpoints older than ``resumed_step`` (a kill between publishing a checkpoint and
    deleting the previous one). Main process only."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return
    for path in root.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in root.glob("best-*"):
        if best_step is None or _step_of(path) != best_step:
            shutil.rmtree(path, ignore_errors=True)
    for path in root.glob("step-*"):
        if resumed_step is not None and _step_of(path) < resumed_step:
            shutil.rmtree(path, ignore_errors=True)


def _frozen_exists(model: torch.nn.Module) -> bool:
    return any(not p.requires_grad for p in model.parameters())


def _publish(tmp: Path, final: Path, older: str) -> None:
    """Rename the complete ``tmp`` to ``final`` (replacing it), then delete the siblings of
    ``final`` that match ``older``; older checkpoints go only once the new one is in place."""
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in final.parent.glob(older):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(accelerator, model: torch.nn.Module, scheduler, state: TrainerState, run_dir: Path) -> Path:
    """Write the resumable checkpoint of ``state.step`` atomically, keep only the newest and
    return its path.

    A model with frozen weights (PET) stores its trainable weights only: the frozen base is
    rebuilt from the recipe on resume. Collective: every rank must call it.
    """
    root = checkpoint_dir(run_dir)
    final = root / f"step-{state.step:08d}"
    tmp = root / f".tmp-step-{state.step:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    kwargs = {}
    if _frozen_exists(model) and is_deepspeed(accelerator):
        kwargs["exclude_frozen_parameters"] = True
    save_rng_state(tmp, accelerator.process_index, accelerator.step)
    accelerator.save_state(str(tmp), **kwargs)
    drop_accelerate_rng_pickle(tmp, accelerator.process_index)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_scheduler(tmp, scheduler)
        atomic_write_json(tmp / STATE_FILE, {**state.to_json(), WORLD_SIZE_KEY: accelerator.num_processes})
        _publish(tmp, final, older="step-*")
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, model: torch.nn.Module, scheduler, path: Path) -> TrainerState:
    """Restore the state saved in ``path`` (model, optimizer, LR schedule, this rank's RNG)
    and return its TrainerState. ``path`` should come from :func:`resumable_checkpoint`."""
    state = read_trainer_state(path)
    kwargs: dict[str, Any] = {}
    if _frozen_exists(model):
        kwargs = {"load_module_strict": False} if is_deepspeed(accelerator) else {"strict": False}
    if not is_deepspeed(accelerator):
        _check_saved_keys(model, path)
    from safetensors import SafetensorError

    try:
        accelerator.load_state(str(path), load_kwargs={"weights_only": True}, **kwargs)
        load_scheduler(path, scheduler)
        accelerator.step = restore_rng_state(path, accelerator.process_index)
    except (OSError, EOFError, ValueError, KeyError, RuntimeError, pickle.UnpicklingError, SafetensorError) as err:
        raise DamagedCheckpointError(
            f"{path}: cannot be loaded ({one_line(err)}); move it out "
            f"of {path.parent} to resume from an earlier checkpoint or to restart the run"
        ) from err
    return state


def _check_saved_keys(model: torch.nn.Module, path: Path) -> None:
    """Fail loudly when a checkpoint lacks trainable weights of the model (a resume with a
    different method or model would otherwise restart those weights silently)."""
    from safetensors import safe_open

    file = path / "model.safetensors"
    if not file.is_file():
        return
    with safe_open(str(file), framework="pt") as handle:
        saved = set(handle.keys())
    model = _without_ddp(model)
    missing = [n for n, p in model.named_parameters() if p.requires_grad and n not in saved]
    if missing:
        raise UserError(
            f"checkpoint {path} does not hold the trainable weights {missing[:3]}... of this "
            f"run's model; it was written by a different model or method (delete it to restart)"
        )


def register_trainable_only_saving(accelerator, model: torch.nn.Module) -> None:
    """Make ``accelerator.save_state`` store only trainable weights of a partly frozen model
    (non-DeepSpeed; DeepSpeed gets ``exclude_frozen_parameters``)."""
    if not _frozen_exists(model) or is_deepspeed(accelerator):
        return
    trainable = {n for n, p in _without_ddp(model).named_parameters() if p.requires_grad}

    def keep_trainable(models, weights, output_dir):
        for i, weight in enumerate(weights):
            weights[i] = {k: v for k, v in weight.items() if k in trainable}

    accelerator.register_save_state_pre_hook(keep_trainable)


def is_deepspeed(accelerator) -> bool:
    """Return whether ``accelerator`` runs DeepSpeed."""
    return str(accelerator.distributed_type).endswith("DEEPSPEED")


def expected_saved_numel(model: torch.nn.Module) -> int:
    """Return the parameter elements ``save_pretrained`` must write: the trainable ones for a
    PEFT model (adapter or prompt), all of them otherwise. ZeRO-3 partitioned parameters
    report their full size through ``ds_numel``."""
    is_peft = hasattr(model, "peft_config")
    total = 0
    for param in model.parameters():  # tied parameters are yielded once
        if is_peft and not param.requires_grad:
            continue
        total += getattr(param, "ds_numel", param.numel())
    return total


def saved_numel(directory: Path) -> int:
    """Return the number of tensor elements in the safetensors files of ``directory``."""
    from safetensors import safe_open

    total = 0
    for file in sorted(Path(directory).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                total += math.prod(handle.get_slice(key).get_shape())
    return total


def gathered_weights(accelerator, model) -> tuple[torch.nn.Module, dict[str, torch.Tensor] | None]:
    """Return (the unwrapped model, its full state dict). Under ZeRO-3 the state dict is
    gathered (every rank must call this); otherwise None, i.e. the model's own: under ZeRO-1/2
    every rank holds the whole module, and its own state dict keeps tied weights tied
    (Accelerate's copy of it unties them, and the LM head would be saved twice).
    Without DeepSpeed the unwrapping is done here: Accelerate's imports DeepSpeed to check
    engine types, half a second per save when it is installed."""
    if is_deepspeed(accelerator):
        unwrapped = accelerator.unwrap_model(model)
        if accelerator.state.deepspeed_plugin.zero_stage == 3:
            return unwrapped, accelerator.get_state_dict(model)
        return unwrapped, None
    return _without_ddp(model), None


def _without_ddp(model: torch.nn.Module) -> torch.nn.Module:
    while isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = model.module
    return model


def save_best(accelerator, model, step: int, dev_loss: float, run_dir: Path) -> Path:
    """Write the weights of ``model`` as the new best checkpoint and drop the previous one.

    Gathers full weights under ZeRO-3 (collective: every rank must call it) and checks that
    the number of saved elements equals the parameter count: a ZeRO-3 save without the
    gather writes a tiny file, which would silently evaluate a broken model.
    """
    root = checkpoint_dir(run_dir)
    final = root / f"best-{step:08d}"
    tmp = root / f".tmp-best-{step:08d}"
    unwrapped, state_dict = gathered_weights(accelerator, model)
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        unwrapped.save_pretrained(str(tmp), state_dict=state_dict, safe_serialization=True)
        expected, written = expected_saved_numel(unwrapped), saved_numel(tmp)
        if written != expected:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(
                f"best checkpoint at step {step} holds {written} weight elements but the model "
                f"has {expected} to save (ZeRO-3 save without gathering weights?)"
            )
        atomic_write_json(tmp / BEST_FILE, {"step": step, "dev_loss": dev_loss, "numel": written})
        _publish(tmp, final, older="best-*")
    accelerator.wait_for_everyone()
    return final


def load_best_weights(model: torch.nn.Module, directory: Path) -> dict[str, Any]:
    """Load the weights saved by :func:`save_best` into ``model`` (a plain or PEFT model, not
    wrapped) and return its best.json (step, dev_loss). The weights are copied into the
    model's own parameters, on their device and in their dtype (the training precision): no
    second copy of the model. DamagedCheckpointError names a file that cannot be read."""
    directory = Path(directory)
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise UserError(f"best checkpoint {directory} has no .safetensors weights")
    is_peft = hasattr(model, "peft_config")
    state_dict: dict[str, torch.Tensor] = {}
    try:
        info = read_json_object(directory / BEST_FILE)
        for file in files:
            if is_peft:
                state_dict.update(load_safetensors(file))
            else:  # the model's own loading reads them (below)
                check_safetensors(file)
    except DamagedCheckpointError as err:
        raise DamagedCheckpointError(
            f"{err}; the best weights are lost: delete {directory.parent} to train the run again"
        ) from None
    if is_peft:
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, state_dict)
        # PEFT loads a soft prompt itself and still reports its key as unexpected.
        unexpected = [k for k in getattr(result, "unexpected_keys", []) if k != "prompt_embeddings"]
        if unexpected:
            raise RuntimeError(f"{directory}: adapter keys not in the model: {unexpected[:3]}")
        return info
    load_full_weights(model, directory)
    return info
