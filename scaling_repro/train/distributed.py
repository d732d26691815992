"""The Accelerator of a run: one CPU process, torchrun on CPUs (gloo) or GPUs (NCCL), and
DeepSpeed ZeRO-2/3 through Accelerate's DeepSpeed plugin.

Accelerate only goes multi-process on CPU when told ``cpu=True`` (otherwise a torchrun on a
CPU machine silently trains W independent copies); DeepSpeed on CPU needs ``cpu=False`` and an
explicit gloo backend. Both cases are handled here so the loop never branches on them.

DeepSpeed >= 0.16.4 is required (:data:`DEEPSPEED_FLOOR`): earlier releases cannot load their
own checkpoints under torch's ``weights_only`` default, so every resume would be a damaged-checkpoint
restart. On a GPU cluster ``pip install --no-build-isolation 'deepspeed>=0.16.4'`` builds it against
the installed torch. On a CPU-only machine (measured with torch 2.13 CPU, DeepSpeed 0.19.8) a
plain ``pip install`` of the sdist builds no ops, without torch in its build environment (the
``dev`` extra does this; it adds hjson, ninja, msgpack, einops); it then runs ZeRO-2 and ZeRO-3 on its CPU
accelerator over gloo. Its first use JIT-compiles a shared-memory all-reduce op with ninja
(about a minute); we skip that op on CPU. Two traps found there: ZeRO flattens parameters,
which changes Adafactor (see :data:`ADAFACTOR_UNDER_ZERO`); and ``accelerator.end_training()``
destroys the process group, which breaks a second run in the same process.

Under ZeRO-3 a pretrained model is loaded partitioned over the ranks from the start
(:func:`sharded_construction`), not built whole on every rank and partitioned by the engine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from scaling_repro.errors import UserError
from scaling_repro.ranks import current_process

log = logging.getLogger(__name__)

DEEPSPEED_CONFIGS_DIR = Path(__file__).resolve().parents[2] / "recipes" / "deepspeed"


def resolve_deepspeed_config(path: str) -> Path:
    """Return the DeepSpeed JSON file named by ``train.deepspeed``: a path, or a file name
    in ``recipes/deepspeed/`` (``zero2``, ``zero3.json``, ...)."""
    candidates = [Path(path)]
    if not Path(path).is_absolute():
        candidates += [DEEPSPEED_CONFIGS_DIR / path, DEEPSPEED_CONFIGS_DIR / f"{path}.json"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(p.stem for p in DEEPSPEED_CONFIGS_DIR.glob("*.json")))
    raise UserError(f"train.deepspeed: file {path!r} not found; shipped configs: {shipped}")


def load_deepspeed_config(path: str) -> dict[str, Any]:
    """Return the DeepSpeed config at ``path`` after the checks that keep our optimizer.

    A config that declares ``optimizer`` or ``scheduler`` would replace Adafactor and the
    cosine schedule, and ZeRO offload without ``zero_force_ds_cpu_optimizer: false`` makes
    Accelerate swap the optimizer for DeepSpeedCPUAdam: all three are errors here.
    """
    file = resolve_deepspeed_config(path)
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"train.deepspeed: {file}: not valid JSON: {err}") from None
    for key in ("optimizer", "scheduler"):
        if key in config:
            raise UserError(
                f"train.deepspeed: {file} declares {key!r}, which would silently replace the "
                f"recipe's train.optimizer / train.schedule; remove it (our optimizer is passed "
                f"to DeepSpeed as a client optimizer)"
            )
    zero = config.get("zero_optimization", {})
    offload = zero.get("offload_optimizer", {}).get("device", "none")
    if offload not in (None, "none") and config.get("zero_force_ds_cpu_optimizer", True):
        raise UserError(
            f"train.deepspeed: {file} offloads the optimizer without "
            f'"zero_force_ds_cpu_optimizer": false; Accelerate would replace our optimizer with '
            f"DeepSpeedCPUAdam"
        )
    if zero.get("stage") == 3 and not zero.get("stage3_gather_16bit_weights_on_model_save", False):
        raise UserError(
            f"train.deepspeed: {file} is ZeRO-3 without "
            f'"stage3_gather_16bit_weights_on_model_save": true; saved weights would be shards'
        )
    return config


ADAFACTOR_UNDER_ZERO = (
    "DeepSpeed ZeRO flattens the parameters of each group into one 1-D partition, so "
    "Adafactor sees vectors: it keeps unfactored second moments and clips updates by the RMS of "
    "the whole partition instead of per matrix. Training works, but it is not the unsharded "
    "Adafactor of the paper (on the tiny test model the loss curves part after the first "
    "update; AdamW, elementwise, matches the unsharded loop exactly). Compare against an "
    "unsharded run before mixing results."
)


def optimizer_mathematics(optimizer_kind: str, deepspeed_config: dict[str, Any] | None) -> str:
    """Return which optimizer mathematics a run computes, as its RunRecord's ``optimizer`` says:
    ``adamw`` (elementwise: the same sharded or not), ``adafactor (factored)`` (the paper's,
    unsharded: DDP or one device), or ``adafactor (unfactored, per-partition clipping under
    ZeRO-k)`` (see :data:`ADAFACTOR_UNDER_ZERO`)."""
    if optimizer_kind != "adafactor":
        return optimizer_kind
    if deepspeed_config is None:
        return "adafactor (factored)"
    stage = deepspeed_config.get("zero_optimization", {}).get("stage", 0)
    return f"adafactor (unfactored, per-partition clipping under ZeRO-{stage})"


def warn_if_adafactor_under_zero(optimizer_kind: str, deepspeed_config: dict[str, Any] | None) -> None:
    """Log the Adafactor-under-ZeRO caveat (:data:`ADAFACTOR_UNDER_ZERO`) when it applies."""
    if deepspeed_config is not None and optimizer_kind == "adafactor":
        log.warning(ADAFACTOR_UNDER_ZERO)


DEEPSPEED_FLOOR = "0.16.4"
DEEPSPEED_INSTALL = f"pip install --no-build-isolation 'deepspeed>={DEEPSPEED_FLOOR}'"


def deepspeed_available() -> tuple[bool, str]:
    """Return (importable at :data:`DEEPSPEED_FLOOR` or above, reason) for DeepSpeed."""
    try:
        import deepspeed
    except Exception as err:  # ImportError, or a broken build raising anything
        return False, f"deepspeed is not importable: {type(err).__name__}: {err}"
    if not deepspeed_version_ok(deepspeed.__version__):
        return False, (
            f"deepspeed {deepspeed.__version__} is older than {DEEPSPEED_FLOOR}, "
            f"which cannot load its own checkpoints under torch's weights_only default"
        )
    return True, f"deepspeed {deepspeed.__version__}"


def deepspeed_version_ok(version: str) -> bool:
    """Return whether DeepSpeed ``version`` is at least :data:`DEEPSPEED_FLOOR`."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) >= Version(DEEPSPEED_FLOOR)
    except InvalidVersion:
        return False


def mixed_precision(precision: str) -> str:
    """Return Accelerate's mixed_precision: bf16 autocast on GPU (``auto``), fp32 on CPU."""
    if precision == "fp32":
        return "no"
    if precision == "bf16":
        if not torch.cuda.is_available():
            raise UserError("train.precision: 'bf16' needs a GPU here; allowed on CPU: auto, fp32")
        return "bf16"
    return "bf16" if torch.cuda.is_available() else "no"


# Collectives wait this long: rank 0 alone gathers and writes a checkpoint (32 GB of weights at
# 16B, more with optimizer state) while the other ranks wait at the next collective; NCCL's
# default of 10 minutes would abort a healthy run on a slow shared filesystem.
PROCESS_GROUP_TIMEOUT = timedelta(minutes=60)


def make_accelerator(
    *,
    precision: str = "auto",
    grad_accum_steps: int = 1,
    micro_batch_size: int = 1,
    grad_clip: float | None = None,
    deepspeed_config: dict[str, Any] | None = None,
    log_dir: Path | None = None,
    trackers: list[str] | None = None,
    compile: bool = False,
):
    """Return an ``accelerate.Accelerator`` for this process (which ``torch.compile``s the
    model it prepares when ``compile``, with dynamic shapes: batch widths vary).

    Any previous Accelerator state of the process is reset first, so successive runs in one
    process (tests, sweeps) each get the configuration they ask for.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DeepSpeedPlugin, InitProcessGroupKwargs, ProjectConfiguration

    check_trackers(trackers or [])
    reset_accelerator_state()
    on_gpu = torch.cuda.is_available()
    kwargs: dict[str, Any] = dict(
        mixed_precision=mixed_precision(precision),
        gradient_accumulation_steps=grad_accum_steps,
        log_with=list(trackers) if trackers else None,
        project_config=ProjectConfiguration(project_dir=str(log_dir), logging_dir=str(log_dir))
        if log_dir is not None
        else None,
    )
    if deepspeed_config is not None:
        ok, reason = deepspeed_available()
        if not ok:
            raise UserError(f"train.deepspeed is set but {reason}; install it with: {DEEPSPEED_INSTALL}")
        config = json.loads(json.dumps(deepspeed_config))
        config["train_micro_batch_size_per_gpu"] = micro_batch_size
        config["gradient_accumulation_steps"] = grad_accum_steps
        config.pop("train_batch_size", None)
        if not on_gpu:
            _skip_deepspeed_shm_build()
        kwargs["deepspeed_plugin"] = DeepSpeedPlugin(
            hf_ds_config=config, gradient_clipping=grad_clip if grad_clip else 0.0
        )
        if not on_gpu:
            kwargs["kwargs_handlers"] = [InitProcessGroupKwargs(backend="gloo", timeout=PROCESS_GROUP_TIMEOUT)]
        _single_process_launch_env()
    else:
        kwargs["cpu"] = not on_gpu
    kwargs.setdefault("kwargs_handlers", [InitProcessGroupKwargs(timeout=PROCESS_GROUP_TIMEOUT)])
    if compile:
        from accelerate.utils import TorchDynamoPlugin

        kwargs["dynamo_plugin"] = TorchDynamoPlugin(backend="inductor", dynamic=True)
    accelerator = Accelerator(**kwargs)
    launched = current_process().count  # the launcher's WORLD_SIZE while no process group exists
    if accelerator.num_processes == 1 and launched > 1:
        raise RuntimeError(
            f"WORLD_SIZE={launched} but Accelerate set up one process "
            f"({accelerator.distributed_type}); refusing to train independent copies"
        )
    assert isinstance(accelerator.state, AcceleratorState)
    return accelerator


def check_trackers(trackers: list[str]) -> None:
    """Raise UserError for a tracker whose package is missing (Accelerate would drop it
    with only a debug message)."""
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    available = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available}
    for name in trackers:
        if name not in available:
            raise UserError(f"train.trackers: got {name!r}; allowed: tensorboard, wandb")
        if not available[name]():
            raise UserError(f"train.trackers: {name!r} is not installed here; pip install {name}, or remove it")


def hardware_info(accelerator) -> dict[str, Any]:
    """Return what the RunRecord's ``hardware`` records about the devices of a run."""
    device = accelerator.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {
        "device": name,
        "device_type": device.type,
        "world_size": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type).rsplit(".", 1)[-1],
        "mixed_precision": accelerator.mixed_precision,
        "torch_threads": torch.get_num_threads(),
    }


def reset_accelerator_state() -> None:
    """Forget the process-wide Accelerate state (not the torch process group)."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    os.environ.pop("ACCELERATE_USE_DEEPSPEED", None)


def _single_process_launch_env() -> None:
    """Without a launcher (one process, no torchrun), DeepSpeed still needs a process group."""
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))


def is_zero3(deepspeed_config: dict[str, Any] | None) -> bool:
    """Return whether ``deepspeed_config`` partitions the parameters (ZeRO stage 3)."""
    return deepspeed_config is not None and deepspeed_config.get("zero_optimization", {}).get("stage") == 3


def construction_config(deepspeed_config: dict[str, Any], precision: str) -> dict[str, Any]:
    """Return ``deepspeed_config`` with what ``deepspeed.zero.Init`` reads filled in, as
    Accelerate fills it later: bf16 when the run trains in bf16 (the parameters are made in
    that dtype, as the engine would cast them), one example per micro-batch (batch sizes do not
    change how parameters are partitioned). Other ``"auto"`` values DeepSpeed leaves at its defaults."""
    config = json.loads(json.dumps(deepspeed_config))
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps"):
        if config.get(key, "auto") == "auto":
            config[key] = 1
    config.pop("train_batch_size", None)
    half = {"bf16": mixed_precision(precision) == "bf16", "fp16": False}
    for key, enabled in half.items():
        if isinstance(config.get(key), dict) and config[key].get("enabled") == "auto":
            config[key]["enabled"] = enabled
    return config


@contextlib.contextmanager
def sharded_construction(deepspeed: str | None, precision: str = "auto") -> Iterator[bool]:
    """Within: models that transformers builds or loads (``from_config``, ``from_pretrained``)
    are partitioned over the ranks while they are built, when the DeepSpeed config named by
    ``deepspeed`` (``train.deepspeed``) is ZeRO-3: transformers' ``HfDeepSpeedConfig`` is kept
    alive, so its loaders enter ``deepspeed.zero.Init``; PEFT, wrapped within, gathers what it
    reads. No rank ever holds the whole model, and the engine adopts the partitions as they are.
    Yields whether it partitions; for any other run it is :func:`whole_construction`.

    The process group is started here, as :func:`make_accelerator` would (backend, timeout),
    since partitioning needs it; the Accelerator made later uses it.
    """
    config = load_deepspeed_config(deepspeed) if deepspeed else None
    if not is_zero3(config):
        with whole_construction():
            yield False
        return
    assert config is not None
    ok, reason = deepspeed_available()
    if not ok:
        raise UserError(f"train.deepspeed is set but {reason}; install it with: {DEEPSPEED_INSTALL}")
    from transformers.integrations.deepspeed import HfDeepSpeedConfig

    _init_deepspeed_process_group()
    previous = _set_hf_deepspeed_config(None)
    alive = HfDeepSpeedConfig(construction_config(config, precision))  # transformers keeps a weak reference
    try:
        yield True
    finally:
        _set_hf_deepspeed_config(previous)
        del alive


@contextlib.contextmanager
def whole_construction() -> Iterator[None]:
    """Within: transformers builds and loads models whole, even in a process where a ZeRO-3
    config is set (Accelerate keeps one while its state lives, after training too); that
    config is set again after."""
    previous = _set_hf_deepspeed_config(None)
    try:
        yield
    finally:
        _set_hf_deepspeed_config(previous)


def _set_hf_deepspeed_config(ref):
    """Set the weak reference through which transformers finds the DeepSpeed config (None: no
    ZeRO-3) and return the previous one. Transformers offers no getter for it: this reads its
    module global, and does nothing before that module is imported (nothing is set then)."""
    module = sys.modules.get("transformers.integrations.deepspeed")
    if module is None or not hasattr(module, "_hf_deepspeed_config_weak_ref"):
        return None
    previous = module._hf_deepspeed_config_weak_ref
    module._hf_deepspeed_config_weak_ref = ref
    return previous


def _init_deepspeed_process_group() -> None:
    """Start the process group DeepSpeed uses, with the backend and timeout of our Accelerators."""
    import deepspeed.comm as dist

    _single_process_launch_env()
    on_gpu = torch.cuda.is_available()
    if not on_gpu:
        _skip_deepspeed_shm_build()
    if not dist.is_initialized():
        dist.init_distributed(
            dist_backend="nccl" if on_gpu else "gloo", auto_mpi_discovery=False, timeout=PROCESS_GROUP_TIMEOUT
        )


def _skip_deepspeed_shm_build() -> None:
    """DeepSpeed's CPU accelerator JIT-compiles a shared-memory all-reduce op with ninja on
    first use (a minute on a small machine); gloo's all-reduce is enough for CPU runs."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
