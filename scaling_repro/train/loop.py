"""The training loop: one Accelerate loop for finetuning (FMT / Prompt / LoRA) and pretraining.

    result = train(model, train_set, dev_set, collate_fn, run_dir, config=spec.train,
                   lr=spec.method.lr, batch_size=spec.method.batch_size, seed=spec.seed)
    result.load_best(model)          # best-by-dev-loss weights back into the model

Runs unchanged on one CPU process, ``torchrun --nproc_per_node N`` (gloo on CPU, NCCL on GPU),
multi-node torchrun and DeepSpeed ZeRO-2/3 (``train.deepspeed``). Gradient accumulation
reaches the method's global batch on any number of devices; the loss is the token-level
mean over the global batch (see :mod:`scaling_repro.train.batching`). A run directory that
holds a checkpoint resumes from it and ends with the same result as an uninterrupted run.

:func:`train` reads top to bottom: :func:`~scaling_repro.train.setup.setup` (Accelerator,
prepared model / optimizer / schedule, resume), then per step :func:`train_step` (micro-batches,
loss, backward, clip, optimizer and schedule step), a train log line, :func:`evaluate` (dev loss,
best checkpoint) and a resumable checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from scaling_repro.config.recipe import TrainConfig
from scaling_repro.models.nll import token_nll_sum
from scaling_repro.train import checkpoint as ckpt
from scaling_repro.train import stop, throughput
from scaling_repro.train.batching import (
    Batch,
    Batcher,
    ExampleStream,
    dev_loss,
    rank_micro_batches,
    to_device,
    use_packing,
)
from scaling_repro.train.checkpoint_policy import CheckpointTimer
from scaling_repro.train.counters import ExampleSizes, PendingLoss, StepCounts
from scaling_repro.train.distributed import hardware_info
from scaling_repro.train.setup import Session, finish_trackers, setup

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; ``str(err)`` is ``non-finite loss at step k``, the
    reason a RunRecord's ``status: failed: ...`` carries."""

    def __init__(self, step: int, loss: float) -> None:
        super().__init__(f"non-finite loss at step {step}")
        self.step = step
        self.loss = loss


@dataclass(frozen=True)
class TrainResult:
    """What a finished training run measured (the RunRecord's training fields)."""

    steps: int
    epochs: float
    tokens_seen: int  # input tokens (without padding) trained on, all devices
    wall_seconds: float  # whole run including dev evaluations, summed over resumes
    tokens_per_second: float | None  # per device, training steps only
    mfu: float | None  # model FLOPs utilization; None on CPU / unknown GPU
    best_step: int | None
    best_dev_loss: float | None
    best_checkpoint: Path | None  # save_pretrained directory of the best weights
    world_size: int = 1
    resumed_from_step: int | None = None
    stopped_early: bool = False
    hardware: dict[str, Any] = field(default_factory=dict)
    optimizer: str | None = None  # the optimizer mathematics that ran (distributed.optimizer_mathematics)

    def record_fields(self) -> dict[str, Any]:
        """Return the RunRecord fields this result fills (``RunRecord(**..., **fields)``)."""
        return {
            "dev_loss": self.best_dev_loss,
            "best_step": self.best_step,
            "steps": self.steps,
            "epochs": self.epochs,
            "tokens_seen": self.tokens_seen,
            "wall_seconds": self.wall_seconds,
            "tokens_per_second": self.tokens_per_second,
            "mfu": self.mfu,
            "hardware": dict(self.hardware),
            "optimizer": self.optimizer,
        }

    def load_best(self, model: torch.nn.Module) -> dict[str, Any]:
        """Load the best checkpoint's weights into ``model`` (plain or PEFT, unwrapped) and
        return its best.json ({step, dev_loss, numel})."""
        if self.best_checkpoint is None:
            raise RuntimeError("this run saved no best checkpoint (no dev evaluation ran)")
        return ckpt.load_best_weights(model, self.best_checkpoint)


@dataclass(frozen=True)
class StepInfo:
    """Passed to ``on_step`` after every optimizer step (on every rank)."""

    step: int
    state: ckpt.TrainerState
    model: torch.nn.Module  # as prepared by Accelerate (DDP / DeepSpeed engine)
    accelerator: Any


@dataclass(frozen=True)
class TrainData:
    """The examples a run trains and evaluates on, and how to batch them.

    ``train_set`` / ``dev_set`` are indexable sequences of examples with ``input_ids`` and
    ``labels`` (e.g. EncodedExample) that ``batcher`` turns into padded or packed CPU batches.
    """

    train_set: Sequence[Any]
    dev_set: Sequence[Any]
    batcher: Batcher


def train(
    model: torch.nn.Module,
    train_set: Sequence[Any],
    dev_set: Sequence[Any],
    collate_fn: Callable[[list[Any]], Batch],
    run_dir: Path,
    *,
    config: TrainConfig,
    lr: float,
    batch_size: int,
    seed: int,
    on_step: Callable[[StepInfo], None] | None = None,
    tracker_project: str = "scaling_repro",
) -> TrainResult:
    """Train ``model`` (already wrapped by its method) and return the TrainResult.

    ``train_set`` / ``dev_set`` / ``collate_fn`` are as in :class:`TrainData`; ``batch_size`` is
    the global batch in examples. Raises NonFiniteLossError on a NaN/inf loss, and
    TrainingStopped before a step when asked to (:mod:`scaling_repro.train.stop`).
    """
    started = time.perf_counter()
    run = setup(
        model,
        len(train_set),
        Path(run_dir),
        config=config,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        tracker_project=tracker_project,
    )
    batcher = Batcher(collate_fn, use_packing(config.packing, model, train_set), run.keep_logits)
    data = TrainData(train_set, dev_set, batcher)
    plan, state = run.plan, run.state
    stream = ExampleStream(len(train_set), seed)
    sizes = ExampleSizes(train_set)
    pending = PendingLoss(run.device)
    session_start = started - state.wall_seconds
    progress = _progress_bar(run)
    run.model.train()
    saved_step = state.step  # a resumed run starts from a saved step
    timer = CheckpointTimer(config.checkpoint_minutes)
    while state.step < plan.total_steps and not state.stopped_early:
        if stop.requested():
            _close(run, progress)
            raise stop.TrainingStopped(state.step)
        preempted, due = _save_requests(run, timer)
        if (preempted or due) and state.step > saved_step:
            _read_loss(run, pending, progress)
            state.wall_seconds = time.perf_counter() - session_start
            ckpt.save_checkpoint(run.accelerator, run.model, run.scheduler, state, run.run_dir)
            saved_step = state.step
            timer.saved()
        if preempted:
            _close(run, progress)
            raise stop.TrainingPreempted(state.step)
        step_start = time.perf_counter()
        indices = stream.take(state.step * batch_size, batch_size)
        counts = sizes.counts(indices)
        pending.add(state.step + 1, train_step(run, data, indices, counts))
        _count_step(run, counts)
        last = state.step == plan.total_steps
        log_now, eval_now = state.step % config.log_every == 0 or last, state.step % plan.eval_every == 0 or last
        if log_now or eval_now or state.step % plan.checkpoint_every == 0:
            _read_loss(run, pending, progress)  # waits for the device: counted as training time
        state.train_seconds += time.perf_counter() - step_start
        progress.update(1)
        lr_now = run.scheduler.get_last_lr()[0]
        if log_now:
            _log_train(run, progress, lr_now)
        if eval_now:
            state.stopped_early = evaluate(run, data, lr_now)
        if on_step is not None:
            on_step(StepInfo(state.step, state, run.model, run.accelerator))
        state.wall_seconds = time.perf_counter() - session_start
        if state.step % plan.checkpoint_every == 0 or last or state.stopped_early:
            ckpt.save_checkpoint(run.accelerator, run.model, run.scheduler, state, run.run_dir)
            saved_step = state.step
            timer.saved()
    _close(run, progress)
    state.wall_seconds = time.perf_counter() - session_start
    result = _result(run, started)
    _release_engine(run)
    return result


def _release_engine(run: Session) -> None:
    """Free a DeepSpeed engine once training is over: evaluation reads the best weights into a
    fresh model, and the engine's partitions and optimizer state must not stay on the device
    (its forward hooks and Accelerate's references would keep it alive)."""
    engine = run.model
    if not hasattr(engine, "destroy"):  # DeepSpeedEngine only
        return
    engine.destroy()
    for name in ("module_forward_pre_hook", "module_forward_post_hook"):  # left on the module by destroy()
        handle = getattr(engine, name, None)
        if handle is not None:
            handle.remove()
            setattr(engine, name, None)
    run.accelerator.free_memory()


def train_step(run: Session, data: TrainData, indices: list[int], counts: StepCounts) -> torch.Tensor:
    """Run one optimizer step on the global batch ``indices`` (whose StepCounts are
    ``counts``; this process trains its micro-batches of it) and return this process's share
    of the step's token-level mean loss, a device scalar that is not read back."""
    plan, accelerator, device = run.plan, run.accelerator, run.device
    global_targets = float(max(counts.target_tokens, 1))
    step_loss = torch.zeros((), device=device)
    for micro in rank_micro_batches(indices, plan.micro, plan.world, accelerator.process_index):
        batch = to_device(data.batcher([data.train_set[i] for i in micro]), device)
        with accelerator.accumulate(run.model):
            loss = token_nll_sum(run.model, batch, data.batcher.keep_logits) / global_targets
            # accelerate / DeepSpeed divide by the accumulation steps; DDP averages ranks.
            accelerator.backward(loss * plan.accum * plan.world)
            step_loss += loss.detach()
    if plan.config.grad_clip and not plan.deepspeed:  # DeepSpeed clips inside its step
        accelerator.clip_grad_norm_(run.model.parameters(), plan.config.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return step_loss


def evaluate(run: Session, data: TrainData, lr: float) -> bool:
    """Measure the dev loss, save the weights when they are the best so far, log; return
    whether early stopping ends the run here."""
    state, config = run.state, run.plan.config
    loss = dev_loss(run.model, data.dev_set, data.batcher, run.plan.micro, run.accelerator)
    improved = state.best_dev_loss is None or loss < state.best_dev_loss
    if improved:
        state.best_step, state.best_dev_loss, state.evals_since_best = state.step, loss, 0
        ckpt.save_best(run.accelerator, run.model, state.step, loss, run.run_dir)
    else:
        state.evals_since_best += 1
    run.log.write(
        {
            "event": "eval",
            "step": state.step,
            "epoch": state.examples_seen / run.plan.train_size,
            "dev_loss": loss,
            "best_dev_loss": state.best_dev_loss,
            "best_step": state.best_step,
            "lr": lr,
        }
    )
    if config.trackers:
        run.accelerator.log({"dev_loss": loss}, step=state.step)
    patience = config.early_stopping_patience
    return bool(patience and state.evals_since_best >= patience and state.step >= config.min_steps)


def _count_step(run: Session, counts: StepCounts) -> None:
    """Add a trained step to the trainer state's counters."""
    state = run.state
    state.step += 1
    state.examples_seen += run.plan.batch_size
    state.tokens_seen += counts.tokens
    state.target_tokens_seen += counts.target_tokens
    state.timed_tokens += counts.tokens
    state.timed_flops += run.flops.training_flops(
        counts.tokens,
        counts.squared_lengths,
        counts.examples,
        logit_positions=counts.target_tokens if run.keep_logits else None,  # the LM head runs where logits are kept
    )


def _read_loss(run: Session, pending: PendingLoss, progress: tqdm) -> None:
    """Read the pending step losses into the trainer state; raise NonFiniteLossError (after
    logging it) when a step since the last read had a NaN/inf loss."""
    state, read = run.state, pending.read(run.accelerator)
    if read.first_non_finite_step is not None:
        step = read.first_non_finite_step
        run.log.write({"event": "failed", "step": step, "reason": f"non-finite loss {read.loss_sum}"})
        _close(run, progress)
        raise NonFiniteLossError(step, read.loss_sum)
    state.interval_loss += read.loss_sum
    state.interval_steps += read.steps


def _log_train(run: Session, progress: tqdm, lr: float) -> None:
    """Write the train line of the logging interval that ends now, and start the next one."""
    state = run.state
    tps, mfu = _throughput(run)
    record = {
        "event": "train",
        "step": state.step,
        "epoch": state.examples_seen / run.plan.train_size,
        "train_loss": state.interval_loss / state.interval_steps,
        "lr": lr,
        "tokens_seen": state.tokens_seen,
        "tokens_per_second": tps,
        "mfu": mfu,
    }
    run.log.write(record)
    if run.plan.config.trackers:
        run.accelerator.log({k: v for k, v in record.items() if isinstance(v, float)}, step=state.step)
    progress.set_postfix(loss=f"{record['train_loss']:.4f}", lr=f"{lr:.2e}")
    state.interval_loss, state.interval_steps = 0.0, 0


def _result(run: Session, started: float) -> TrainResult:
    """Return the TrainResult of a run whose loop has ended."""
    state = run.state
    tps, mfu = _throughput(run)
    best = ckpt.best_checkpoint(run.run_dir)
    log.info(
        "trained %d steps in %.1fs; best dev loss %s at step %s",
        state.step,
        time.perf_counter() - started,
        state.best_dev_loss,
        state.best_step,
    )
    return TrainResult(
        steps=state.step,
        epochs=state.examples_seen / run.plan.train_size,
        tokens_seen=state.tokens_seen,
        wall_seconds=state.wall_seconds,
        tokens_per_second=tps,
        mfu=mfu,
        best_step=state.best_step,
        best_dev_loss=state.best_dev_loss,
        best_checkpoint=best,
        world_size=run.plan.world,
        resumed_from_step=run.resumed_from,
        stopped_early=state.stopped_early,
        hardware={**hardware_info(run.accelerator), "peak_bf16_flops": run.peak_flops},
        optimizer=run.optimizer_math or None,
    )


def _throughput(run: Session) -> tuple[float | None, float | None]:
    """Return (tokens/s per device, MFU) over the timed training steps; (None, None) before any."""
    state = run.state
    if state.train_seconds <= 0:
        return None, None
    per_device = state.timed_tokens / state.train_seconds / run.plan.world
    flops_per_token = state.timed_flops / state.timed_tokens if state.timed_tokens else 0.0
    return per_device, throughput.mfu(per_device, flops_per_token, run.peak_flops)


def _progress_bar(run: Session) -> tqdm:
    return tqdm(
        total=run.plan.total_steps,
        initial=run.state.step,
        disable=not run.accelerator.is_local_main_process,
        desc=f"train {run.run_dir.parent.name}/{run.run_dir.name}",
        dynamic_ncols=True,
    )


def _save_requests(run: Session, timer: CheckpointTimer) -> tuple[bool, bool]:
    """Return (whether any process was asked to stop by SIGTERM or USR2, whether a checkpoint is
    due by ``train.checkpoint_minutes`` on any process). All processes agree, so they save the
    same checkpoint and stop at the same step; they agree on the host: no wait for the device."""
    flags = torch.tensor([int(stop.preemption_requested()), int(timer.due())])
    if run.plan.world > 1:
        torch.distributed.all_reduce(flags, group=run.host_group)
    return bool(flags[0] > 0), bool(flags[1] > 0)


def _close(run: Session, progress: tqdm) -> None:
    progress.close()
    finish_trackers(run.accelerator)
