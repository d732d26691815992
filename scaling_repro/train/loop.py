"""The training loop: one Accelerate loop for finetuning (FMT / Prompt / LoRA) and pretraining.

    result = train_run(spec, model, train_set, dev_set, collate_fn, spec.run_dir)
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
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from scaling_repro.config.recipe import RunSpec, TrainConfig
from scaling_repro.models.nll import predicted_tokens, token_nll_sum
from scaling_repro.train import checkpoint as ckpt
from scaling_repro.train import stop, throughput
from scaling_repro.train.batching import Batch, ExampleStream, dev_loss, rank_micro_batches, to_device
from scaling_repro.train.distributed import hardware_info
from scaling_repro.train.setup import Session, finish_trackers, setup

log = logging.getLogger(__name__)
# Accelerate logs every file of every checkpoint at INFO; our own line per checkpoint is enough.
for _name in ("accelerate.accelerator", "accelerate.checkpointing"):
    logging.getLogger(_name).setLevel(logging.WARNING)
# ... and warns at every save of a tied-embedding model that it dropped the tied copy, which
# reloads correctly (full-model resume and best-checkpoint tests cover it).
logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)


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

    def record_fields(self) -> dict[str, Any]:
        """Return the RunRecord fields this result fills (``RunRecord(**..., **fields)``)."""
        return {
            "dev_loss": self.best_dev_loss, "best_step": self.best_step, "steps": self.steps,
            "epochs": self.epochs, "tokens_seen": self.tokens_seen, "wall_seconds": self.wall_seconds,
            "tokens_per_second": self.tokens_per_second, "mfu": self.mfu, "hardware": dict(self.hardware),
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

    ``train_set`` / ``dev_set`` are indexable sequences of examples (e.g. EncodedExample) that
    ``collate_fn`` turns into right-padded ``input_ids, attention_mask, labels`` (-100 ignored).
    """

    train_set: Sequence[Any]
    dev_set: Sequence[Any]
    collate_fn: Callable[[list[Any]], Batch]


@dataclass(frozen=True)
class StepStats:
    """What one optimizer step measured, summed over all processes."""

    loss: float  # token-level mean NLL of the global batch
    tokens: int  # input tokens without padding
    squared_lengths: float  # sum of squared sequence lengths (the attention FLOPs)
    target_tokens: int


def train_run(spec: RunSpec, model, train_set, dev_set, collate_fn, run_dir: Path | None = None, **kwargs) -> TrainResult:
    """Train ``model`` with the RunSpec's ``train`` section and method LR / batch size; return
    the TrainResult."""
    return train(
        model, train_set, dev_set, collate_fn, Path(run_dir or spec.run_dir),
        config=spec.train, lr=spec.method.lr, batch_size=spec.method.batch_size, seed=spec.seed, **kwargs,
    )


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
    data = TrainData(train_set, dev_set, collate_fn)
    run = setup(model, len(train_set), Path(run_dir), config=config, lr=lr, batch_size=batch_size, seed=seed,
                tracker_project=tracker_project)
    plan, state = run.plan, run.state
    stream = ExampleStream(len(train_set), seed)
    session_start = started - state.wall_seconds
    progress = _progress_bar(run)
    run.model.train()
    saved_step = state.step  # a resumed run starts from a saved step
    while state.step < plan.total_steps and not state.stopped_early:
        if stop.requested():
            _close(run, progress)
            raise stop.TrainingStopped(state.step)
        if _preempted(run):
            if state.step > saved_step:
                state.wall_seconds = time.perf_counter() - session_start
                ckpt.save_checkpoint(run.accelerator, run.model, run.scheduler, state, run.run_dir)
            _close(run, progress)
            raise stop.TrainingPreempted(state.step)
        step_start = time.perf_counter()
        stats = train_step(run, data, stream.take(state.step * batch_size, batch_size))
        _count_step(run, stats, time.perf_counter() - step_start)
        progress.update(1)
        if not math.isfinite(stats.loss):
            run.log.write({"event": "failed", "step": state.step, "reason": f"non-finite loss {stats.loss}"})
            _close(run, progress)
            raise NonFiniteLossError(state.step, stats.loss)
        state.interval_loss += stats.loss
        state.interval_steps += 1
        last = state.step == plan.total_steps
        lr_now = run.scheduler.get_last_lr()[0]
        if state.step % config.log_every == 0 or last:
            _log_train(run, progress, lr_now)
        if state.step % plan.eval_every == 0 or last:
            state.stopped_early = evaluate(run, data, lr_now)
        if on_step is not None:
            on_step(StepInfo(state.step, state, run.model, run.accelerator))
        state.wall_seconds = time.perf_counter() - session_start
        if state.step % plan.checkpoint_every == 0 or last or state.stopped_early:
            ckpt.save_checkpoint(run.accelerator, run.model, run.scheduler, state, run.run_dir)
            saved_step = state.step
    _close(run, progress)
    state.wall_seconds = time.perf_counter() - session_start
    return _result(run, started)


def train_step(run: Session, data: TrainData, indices: list[int]) -> StepStats:
    """Run one optimizer step on the global batch ``indices`` (this process trains its
    micro-batches of it) and return the step's StepStats."""
    plan, accelerator, device = run.plan, run.accelerator, run.device
    micros = [to_device(data.collate_fn([data.train_set[i] for i in m]), device)
              for m in rank_micro_batches(indices, plan.micro, plan.world, accelerator.process_index)]
    local_targets = sum(predicted_tokens(b["labels"]) for b in micros).to(device)
    global_targets = accelerator.reduce(local_targets.float(), reduction="sum").clamp(min=1.0)
    step_loss = torch.zeros((), device=device)
    for batch in micros:
        with accelerator.accumulate(run.model):
            loss = token_nll_sum(run.model, batch, run.keep_logits) / global_targets
            # accelerate / DeepSpeed divide by the accumulation steps; DDP averages ranks.
            accelerator.backward(loss * plan.accum * plan.world)
            step_loss += loss.detach()
    if plan.config.grad_clip and not plan.deepspeed:  # DeepSpeed clips inside its step
        accelerator.clip_grad_norm_(run.model.parameters(), plan.config.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)

    lengths = torch.cat([b["attention_mask"].sum(dim=1) for b in micros]).double()
    counts = torch.stack([step_loss.double(), lengths.sum(), (lengths**2).sum()])
    counts = accelerator.reduce(counts.to(device), reduction="sum").tolist()
    return StepStats(loss=counts[0], tokens=int(counts[1]), squared_lengths=counts[2],
                     target_tokens=int(global_targets.item()))


def evaluate(run: Session, data: TrainData, lr: float) -> bool:
    """Measure the dev loss, save the weights when they are the best so far, log; return
    whether early stopping ends the run here."""
    state, config = run.state, run.plan.config
    loss = dev_loss(run.model, data.dev_set, data.collate_fn, run.plan.micro, run.accelerator, run.keep_logits)
    improved = state.best_dev_loss is None or loss < state.best_dev_loss
    if improved:
        state.best_step, state.best_dev_loss, state.evals_since_best = state.step, loss, 0
        ckpt.save_best(run.accelerator, run.model, state.step, loss, run.run_dir)
    else:
        state.evals_since_best += 1
    run.log.write({"event": "eval", "step": state.step, "epoch": state.examples_seen / run.plan.train_size,
                   "dev_loss": loss, "best_dev_loss": state.best_dev_loss, "best_step": state.best_step, "lr": lr})
    if config.trackers:
        run.accelerator.log({"dev_loss": loss}, step=state.step)
    patience = config.early_stopping_patience
    return bool(patience and state.evals_since_best >= patience and state.step >= config.min_steps)


def _count_step(run: Session, stats: StepStats, seconds: float) -> None:
    """Add a finished step to the trainer state's counters."""
    state = run.state
    state.step += 1
    state.examples_seen += run.plan.batch_size
    state.tokens_seen += stats.tokens
    state.target_tokens_seen += stats.target_tokens
    state.train_seconds += seconds
    state.timed_tokens += stats.tokens
    state.timed_flops += run.flops.training_flops(stats.tokens, stats.squared_lengths)


def _log_train(run: Session, progress: tqdm, lr: float) -> None:
    """Write the train line of the logging interval that ends now, and start the next one."""
    state = run.state
    tps, mfu = _throughput(run)
    record = {"event": "train", "step": state.step, "epoch": state.examples_seen / run.plan.train_size,
              "train_loss": state.interval_loss / state.interval_steps, "lr": lr,
              "tokens_seen": state.tokens_seen, "tokens_per_second": tps, "mfu": mfu}
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
    log.info("trained %d steps in %.1fs; best dev loss %s at step %s", state.step,
             time.perf_counter() - started, state.best_dev_loss, state.best_step)
    return TrainResult(
        steps=state.step, epochs=state.examples_seen / run.plan.train_size, tokens_seen=state.tokens_seen,
        wall_seconds=state.wall_seconds, tokens_per_second=tps, mfu=mfu, best_step=state.best_step,
        best_dev_loss=state.best_dev_loss, best_checkpoint=best, world_size=run.plan.world,
        resumed_from_step=run.resumed_from, stopped_early=state.stopped_early,
        hardware={**hardware_info(run.accelerator), "peak_bf16_flops": run.peak_flops},
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
    return tqdm(total=run.plan.total_steps, initial=run.state.step, disable=not run.accelerator.is_local_main_process,
                desc=f"train {run.run_dir.parent.name}/{run.run_dir.name}", dynamic_ncols=True)


def _preempted(run: Session) -> bool:
    """Return whether any process was asked to stop by SIGTERM (all processes agree, so they
    save the same checkpoint and stop at the same step)."""
    asked = stop.preemption_requested()
    if run.plan.world == 1:
        return asked
    flag = torch.tensor([float(asked)], device=run.device)
    return bool(run.accelerator.reduce(flag, reduction="sum").item() > 0)


def _close(run: Session, progress: tqdm) -> None:
    progress.close()
    finish_trackers(run.accelerator)
