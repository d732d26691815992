"""Everything a run does before its first (or resumed) step: the batch split over processes,
the Accelerator, the optimizer and LR schedule, Accelerate's wrapping of model and optimizer,
and the trainer state read back from the run directory's latest intact checkpoint.

The order of the calls in :func:`setup` is part of a run's result: the seed is set after the
Accelerator exists and before anything draws from the RNG, and a resume restores the RNG last.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scaling_repro.config.recipe import TrainConfig
from scaling_repro.errors import UserError
from scaling_repro.models.nll import supports_logits_to_keep
from scaling_repro.ranks import current_process
from scaling_repro.train import checkpoint as ckpt
from scaling_repro.train import throughput
from scaling_repro.train.distributed import (
    load_deepspeed_config,
    make_accelerator,
    optimizer_mathematics,
    warn_if_adafactor_under_zero,
)
from scaling_repro.train.metrics_log import JsonlLog
from scaling_repro.train.optim import build_optimizer, build_schedule
from scaling_repro.train.state_files import WorldSizeChangedError
from scaling_repro.train.steps import planned_steps

# The loop's logger: every line a run logs (resuming, damaged checkpoints) comes from one name.
log = logging.getLogger("scaling_repro.train.loop")


@dataclass(frozen=True)
class RunPlan:
    """The fixed shape of a run, known before step 0."""

    config: TrainConfig
    lr: float
    batch_size: int  # global batch, in examples
    seed: int
    train_size: int  # examples in the training set
    world: int  # processes
    micro: int  # examples per micro-batch on one process
    accum: int  # micro-batches per process per optimizer step
    deepspeed: bool
    total_steps: int
    eval_every: int
    checkpoint_every: int


@dataclass(frozen=True)
class Session:
    """This process's part of a run, prepared for its next step (a fresh start or a resume)."""

    plan: RunPlan
    run_dir: Path
    accelerator: Any
    device: torch.device
    precision: str  # Accelerate's mixed_precision: "bf16" autocasts the prepared forward, "no" is fp32
    model: torch.nn.Module  # as prepared by Accelerate (DDP / DeepSpeed engine)
    optimizer: Any  # as prepared by Accelerate
    scheduler: Any
    state: ckpt.TrainerState  # updated in place by the loop
    resumed_from: int | None  # the step of the checkpoint resumed from
    log: JsonlLog
    keep_logits: bool  # the model computes logits for the positions asked for only
    flops: throughput.ModelFlops
    peak_flops: float | None  # of one device; None on CPU / unknown GPU
    host_group: Any = None  # a gloo process group for flags the host decides on (None: the default group)
    optimizer_math: str = ""  # which optimizer mathematics runs (distributed.optimizer_mathematics)


def setup(
    model: torch.nn.Module,
    train_size: int,
    run_dir: Path,
    *,
    config: TrainConfig,
    lr: float,
    batch_size: int,
    seed: int,
    tracker_project: str,
) -> Session:
    """Return the Session of a run: ``model`` and its optimizer prepared by a new Accelerator,
    the LR schedule, and the trainer state of the latest intact checkpoint in ``run_dir``
    (a fresh state at step 0 without one)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    if torch.cuda.is_available():
        set_tf32(config.tf32)
    world = current_process().count
    micro, accum = batch_split(batch_size, config.micro_batch_size, world)
    ds_config = load_deepspeed_config(config.deepspeed) if config.deepspeed else None
    accelerator = make_accelerator(
        precision=config.precision,
        grad_accum_steps=accum,
        micro_batch_size=micro,
        grad_clip=config.grad_clip,
        deepspeed_config=ds_config,
        log_dir=run_dir,
        trackers=config.trackers,
        compile=config.compile,
    )
    warn_if_adafactor_under_zero(config.optimizer, ds_config)
    from accelerate.utils import set_seed

    set_seed(seed)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    eval_every = _eval_every(config, train_size, batch_size)
    plan = RunPlan(
        config=config,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        train_size=train_size,
        world=world,
        micro=micro,
        accum=accum,
        deepspeed=ds_config is not None,
        total_steps=planned_steps(train_size, batch_size, config.max_steps, config.max_epochs, config.min_steps),
        eval_every=eval_every,
        checkpoint_every=config.checkpoint_every or eval_every,
    )

    base_optimizer = build_optimizer(model.parameters(), config.optimizer, lr, config.weight_decay)
    scheduler = build_schedule(
        base_optimizer, config.schedule, plan.total_steps, config.warmup_steps, config.min_lr_ratio
    )
    keep_logits = supports_logits_to_keep(model)
    flops = throughput.ModelFlops.of(model)
    prepared_model, optimizer = accelerator.prepare(model, base_optimizer)
    _check_optimizer_kept(optimizer, type(base_optimizer))
    ckpt.register_trainable_only_saving(accelerator, prepared_model)
    if config.trackers:
        accelerator.init_trackers(tracker_project, config=config.model_dump(mode="json"))

    state, resumed_from = _resume(accelerator, prepared_model, scheduler, run_dir, plan)
    jsonl = JsonlLog(run_dir, enabled=accelerator.is_main_process)
    jsonl.truncate_after(state.step)
    return Session(
        plan=plan,
        run_dir=run_dir,
        accelerator=accelerator,
        device=accelerator.device,
        precision=accelerator.mixed_precision,
        model=prepared_model,
        optimizer=optimizer,
        scheduler=scheduler,
        state=state,
        resumed_from=resumed_from,
        log=jsonl,
        keep_logits=keep_logits,
        flops=flops,
        peak_flops=throughput.peak_bf16_flops(accelerator.device),
        host_group=_host_group(world),
        optimizer_math=optimizer_mathematics(config.optimizer, ds_config),
    )


def _host_group(world: int):
    """Return a gloo group for host-side agreement between processes (e.g. "was SIGTERM
    received?"), so that it never waits for the GPU; None where the default group is gloo."""
    if world == 1 or torch.distributed.get_backend() == "gloo":
        return None
    return _gloo_group()


@functools.cache
def _gloo_group():
    # One per process: a sweep worker trains many runs on the one default group it keeps.
    return torch.distributed.new_group(backend="gloo")


def set_tf32(enabled: bool) -> None:
    """Let CUDA fp32 matmuls and convolutions use TF32 tensor cores (or not). bf16 training is
    unaffected; fp32 runs get ~8x the matmul throughput at a 10-bit mantissa. Returns nothing."""
    set_backend_tf32(torch.backends.cuda.matmul, torch.backends.cudnn, enabled)


def set_backend_tf32(matmul: Any, cudnn: Any, enabled: bool) -> None:
    """Set TF32 on torch's ``matmul`` and ``cudnn`` backend modules: the ``fp32_precision``
    API where torch has it (2.9+, where ``allow_tf32`` is deprecated), ``allow_tf32`` before.
    Returns nothing."""
    # torch's backend modules raise AttributeError for names they do not know, so hasattr is the version test.
    if hasattr(matmul, "fp32_precision"):
        precision = "tf32" if enabled else "ieee"
        matmul.fp32_precision = precision
        cudnn.conv.fp32_precision = precision
    else:
        matmul.allow_tf32 = enabled
        cudnn.allow_tf32 = enabled


def batch_split(batch_size: int, micro_batch_size: int | None, world: int) -> tuple[int, int]:
    """Return (micro-batch size, accumulation steps) that reach the global ``batch_size`` on
    ``world`` processes; raise UserError when ``micro_batch_size`` cannot."""
    micro = micro_batch_size or max(1, batch_size // world)
    if batch_size % (micro * world):
        raise UserError(
            f"method.batch_size {batch_size} is not a multiple of train.micro_batch_size {micro} "
            f"x {world} processes; choose a micro_batch_size m with m x {world} dividing {batch_size}"
        )
    return micro, batch_size // (micro * world)


def finish_trackers(accelerator) -> None:
    """Close the run's experiment trackers (none when ``train.trackers`` is empty)."""
    # Not accelerator.end_training(): it also destroys the process group, which the caller
    # (a sweep or pretraining in one process, the torchrun worker) may still use.
    for tracker in accelerator.trackers:
        tracker.finish()


def _eval_every(config: TrainConfig, train_size: int, batch_size: int) -> int:
    if config.eval_every_epochs is not None:
        return max(1, round(config.eval_every_epochs * train_size / batch_size))
    return config.eval_every


def _resume(accelerator, model, scheduler, run_dir: Path, plan: RunPlan) -> tuple[ckpt.TrainerState, int | None]:
    """Load the latest intact checkpoint into the prepared model, optimizer, schedule and RNG;
    return its trainer state and step (a fresh state and None without one). Drops what a kill
    left in ``run_dir`` besides the checkpoints kept."""
    state = ckpt.TrainerState()
    resumed_from = None
    latest = _resumable(accelerator, run_dir, plan.world, plan.deepspeed)
    if latest is not None:
        state = ckpt.load_checkpoint(accelerator, model, scheduler, latest)
        resumed_from = state.step
        log.info("resuming from %s (step %d)", latest, state.step)
    if accelerator.is_main_process:
        ckpt.clean_partial(run_dir, state.best_step, resumed_from)
    accelerator.wait_for_everyone()
    return state, resumed_from


def _resumable(accelerator, run_dir: Path, world: int, is_ds: bool) -> Path | None:
    """Return the checkpoint to resume from (None: start at step 0); warn about each damaged
    newer one passed over. Rank 0 looks and decides, then tells the others: on a shared
    filesystem another node's listing can be stale (a checkpoint rank 0 just replaced). A
    checkpoint of another number of processes is a WorldSizeChangedError on every rank (no
    rank is left waiting for rank 0)."""
    latest, refused = None, None
    if accelerator.is_main_process:
        try:
            latest, damaged = ckpt.resumable_checkpoint(run_dir, world, is_ds)
        except WorldSizeChangedError as err:
            damaged, refused = [], str(err)
        then = f"resuming from {latest} instead" if latest else "no intact checkpoint: restarting the run from step 0"
        for reason in damaged:
            log.warning("damaged checkpoint: %s; %s", reason, then)
    if world > 1:
        from accelerate.utils import broadcast_object_list

        latest, refused = broadcast_object_list([None if latest is None else str(latest), refused], from_process=0)
    if refused is not None:
        raise WorldSizeChangedError(refused)
    return None if latest is None else Path(latest)


def _check_optimizer_kept(prepared, expected: type) -> None:
    """Fail when Accelerate/DeepSpeed replaced the optimizer we built (e.g. DeepSpeedCPUAdam)."""
    inner = getattr(prepared, "optimizer", prepared)
    inner = getattr(inner, "optimizer", inner)  # DeepSpeed ZeRO wraps the client optimizer
    if not isinstance(inner, expected):
        raise RuntimeError(f"optimizer was replaced by {type(inner).__name__}; expected {expected.__name__}")
