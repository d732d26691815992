"""The training loop: one Accelerate loop for finetuning (FMT / Prompt / LoRA) and pretraining.

    result = train_run(spec, model, train_set, dev_set, collate_fn, spec.run_dir)
    result.load_best(model)          # best-by-dev-loss weights back into the model

Runs unchanged on one CPU process, ``torchrun --nproc_per_node N`` (gloo on CPU, NCCL on GPU),
multi-node torchrun and DeepSpeed ZeRO-2/3 (``train.deepspeed``). Gradient accumulation
reaches the method's global batch on any number of devices; the loss is the token-level
mean over the global batch (see :mod:`scaling_repro.train.batching`). A run directory that
holds a checkpoint resumes from it and ends with the same result as an uninterrupted run.
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

from scaling_repro.errors import UserError
from scaling_repro.ranks import current_process
from scaling_repro.config.recipe import RunSpec, TrainConfig
from scaling_repro.train import checkpoint as ckpt
from scaling_repro.models.nll import predicted_tokens, supports_logits_to_keep, token_nll_sum
from scaling_repro.train import stop
from scaling_repro.train.batching import Batch, ExampleStream, dev_loss, rank_micro_batches, to_device
from scaling_repro.train.distributed import (
    hardware_info,
    load_deepspeed_config,
    make_accelerator,
    warn_if_adafactor_under_zero,
)
from scaling_repro.train.metrics_log import JsonlLog
from scaling_repro.train.optim import build_optimizer, build_schedule
from scaling_repro.train.steps import planned_steps
from scaling_repro.train import throughput

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


def train_run(spec: RunSpec, model, train_set, dev_set, collate_fn, run_dir: Path | None = None, **kwargs) -> TrainResult:
    """Train ``model`` with the RunSpec's ``train`` section and method LR / batch size."""
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

    ``train_set`` / ``dev_set`` are indexable sequences of examples (e.g. EncodedExample) that
    ``collate_fn`` turns into right-padded ``input_ids, attention_mask, labels`` (-100 ignored).
    ``batch_size`` is the global batch in examples. Raises NonFiniteLossError on a NaN/inf loss,
    and TrainingStopped before a step when asked to (:mod:`scaling_repro.train.stop`).
    """
    run_dir = Path(run_dir)
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    world = current_process().count
    micro = config.micro_batch_size or max(1, batch_size // world)
    if batch_size % (micro * world):
        raise UserError(
            f"method.batch_size {batch_size} is not a multiple of train.micro_batch_size {micro} "
            f"x {world} processes; choose a micro_batch_size m with m x {world} dividing {batch_size}"
        )
    accum = batch_size // (micro * world)
    ds_config = load_deepspeed_config(config.deepspeed) if config.deepspeed else None
    accelerator = make_accelerator(
        precision=config.precision, grad_accum_steps=accum, micro_batch_size=micro,
        grad_clip=config.grad_clip, deepspeed_config=ds_config, log_dir=run_dir, trackers=config.trackers,
    )
    is_ds = ds_config is not None
    warn_if_adafactor_under_zero(config.optimizer, ds_config)
    from accelerate.utils import set_seed

    set_seed(seed)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    total_steps = planned_steps(len(train_set), batch_size, config.max_steps, config.max_epochs, config.min_steps)
    eval_every = config.eval_every
    if config.eval_every_epochs is not None:
        eval_every = max(1, round(config.eval_every_epochs * len(train_set) / batch_size))
    checkpoint_every = config.checkpoint_every or eval_every

    base_optimizer = build_optimizer(model.parameters(), config.optimizer, lr, config.weight_decay)
    scheduler = build_schedule(base_optimizer, config.schedule, total_steps, config.warmup_steps, config.min_lr_ratio)
    keep_logits = supports_logits_to_keep(model)
    model_flops = throughput.ModelFlops.of(model)
    prepared_model, optimizer = accelerator.prepare(model, base_optimizer)
    _check_optimizer_kept(optimizer, type(base_optimizer))
    ckpt.register_trainable_only_saving(accelerator, prepared_model)
    if config.trackers:
        accelerator.init_trackers(tracker_project, config=config.model_dump(mode="json"))

    state = ckpt.TrainerState()
    resumed_from = None
    latest = _resumable(accelerator, run_dir, world, is_ds)
    if latest is not None:
        state = ckpt.load_checkpoint(accelerator, prepared_model, scheduler, latest)
        resumed_from = state.step
        log.info("resuming from %s (step %d)", latest, state.step)
    if accelerator.is_main_process:
        ckpt.clean_partial(run_dir, state.best_step, resumed_from)
    accelerator.wait_for_everyone()
    jsonl = JsonlLog(run_dir, enabled=accelerator.is_main_process)
    jsonl.truncate_after(state.step)

    stream = ExampleStream(len(train_set), seed)
    peak = throughput.peak_bf16_flops(accelerator.device)
    session_start = started - state.wall_seconds
    progress = tqdm(total=total_steps, initial=state.step, disable=not accelerator.is_local_main_process,
                    desc=f"train {run_dir.parent.name}/{run_dir.name}", dynamic_ncols=True)
    prepared_model.train()
    while state.step < total_steps and not state.stopped_early:
        if stop.requested():
            progress.close()
            _finish_trackers(accelerator)
            raise stop.TrainingStopped(state.step)
        step_start = time.perf_counter()
        indices = stream.take(state.step * batch_size, batch_size)
        micros = [to_device(collate_fn([train_set[i] for i in m]), accelerator.device)
                  for m in rank_micro_batches(indices, micro, world, accelerator.process_index)]
        local_targets = sum(predicted_tokens(b["labels"]) for b in micros).to(accelerator.device)
        global_targets = accelerator.reduce(local_targets.float(), reduction="sum").clamp(min=1.0)
        step_loss = torch.zeros((), device=accelerator.device)
        for batch in micros:
            with accelerator.accumulate(prepared_model):
                loss = token_nll_sum(prepared_model, batch, keep_logits) / global_targets
                # accelerate / DeepSpeed divide by the accumulation steps; DDP averages ranks.
                accelerator.backward(loss * accum * world)
                step_loss += loss.detach()
        if config.grad_clip and not is_ds:
            accelerator.clip_grad_norm_(prepared_model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

        lengths = torch.cat([b["attention_mask"].sum(dim=1) for b in micros]).double()
        counts = torch.stack([step_loss.double(), lengths.sum(), (lengths**2).sum()])
        counts = accelerator.reduce(counts.to(accelerator.device), reduction="sum").tolist()
        loss_value, tokens, squared_lengths = counts[0], int(counts[1]), counts[2]
        state.step += 1
        state.examples_seen += batch_size
        state.tokens_seen += tokens
        state.target_tokens_seen += int(global_targets.item())
        step_seconds = time.perf_counter() - step_start
        state.train_seconds += step_seconds
        state.timed_tokens += tokens
        state.timed_flops += model_flops.training_flops(tokens, squared_lengths)
        progress.update(1)
        if not math.isfinite(loss_value):
            jsonl.write({"event": "failed", "step": state.step, "reason": f"non-finite loss {loss_value}"})
            progress.close()
            _finish_trackers(accelerator)
            raise NonFiniteLossError(state.step, loss_value)
        state.interval_loss += loss_value
        state.interval_steps += 1
        last = state.step == total_steps
        lr_now = scheduler.get_last_lr()[0]
        if state.step % config.log_every == 0 or last:
            tps, mfu = _throughput(state, world, peak)
            record = {"event": "train", "step": state.step, "epoch": state.examples_seen / len(train_set),
                      "train_loss": state.interval_loss / state.interval_steps, "lr": lr_now,
                      "tokens_seen": state.tokens_seen, "tokens_per_second": tps, "mfu": mfu}
            jsonl.write(record)
            if config.trackers:
                accelerator.log({k: v for k, v in record.items() if isinstance(v, float)}, step=state.step)
            progress.set_postfix(loss=f"{record['train_loss']:.4f}", lr=f"{lr_now:.2e}")
            state.interval_loss, state.interval_steps = 0.0, 0
        evaluated = state.step % eval_every == 0 or last
        if evaluated:
            state.stopped_early = _evaluate(accelerator, prepared_model, dev_set, collate_fn, micro, state,
                                            run_dir, jsonl, config, lr_now, len(train_set), keep_logits)
        if on_step is not None:
            on_step(StepInfo(state.step, state, prepared_model, accelerator))
        state.wall_seconds = time.perf_counter() - session_start
        if state.step % checkpoint_every == 0 or last or state.stopped_early:
            ckpt.save_checkpoint(accelerator, prepared_model, scheduler, state, run_dir)
    progress.close()
    _finish_trackers(accelerator)
    state.wall_seconds = time.perf_counter() - session_start
    tps, mfu = _throughput(state, world, peak)
    best = ckpt.best_checkpoint(run_dir)
    log.info("trained %d steps in %.1fs; best dev loss %s at step %s", state.step,
             time.perf_counter() - started, state.best_dev_loss, state.best_step)
    return TrainResult(
        steps=state.step, epochs=state.examples_seen / len(train_set), tokens_seen=state.tokens_seen,
        wall_seconds=state.wall_seconds, tokens_per_second=tps, mfu=mfu, best_step=state.best_step,
        best_dev_loss=state.best_dev_loss, best_checkpoint=best, world_size=world,
        resumed_from_step=resumed_from, stopped_early=state.stopped_early,
        hardware={**hardware_info(accelerator), "peak_bf16_flops": peak},
    )


def _resumable(accelerator, run_dir: Path, world: int, is_ds: bool) -> Path | None:
    """Return the checkpoint to resume from (None: start at step 0); warn about each damaged
    newer one passed over. Every rank reads the same files, so all choose the same one."""
    latest, damaged = ckpt.resumable_checkpoint(run_dir, world, is_ds)
    if accelerator.is_main_process:
        then = f"resuming from {latest} instead" if latest else "no intact checkpoint: restarting the run from step 0"
        for reason in damaged:
            log.warning("damaged checkpoint: %s; %s", reason, then)
    return latest


def _evaluate(accelerator, model, dev_set, collate_fn, batch_size, state, run_dir, jsonl, config, lr, train_size,
              keep_logits) -> bool:
    """Measure dev loss, save the best weights, log; return whether to stop early."""
    loss = dev_loss(model, dev_set, collate_fn, batch_size, accelerator, keep_logits)
    improved = state.best_dev_loss is None or loss < state.best_dev_loss
    if improved:
        state.best_step, state.best_dev_loss, state.evals_since_best = state.step, loss, 0
        ckpt.save_best(accelerator, model, state.step, loss, run_dir)
    else:
        state.evals_since_best += 1
    jsonl.write({"event": "eval", "step": state.step, "epoch": state.examples_seen / train_size,
                 "dev_loss": loss, "best_dev_loss": state.best_dev_loss, "best_step": state.best_step, "lr": lr})
    if config.trackers:
        accelerator.log({"dev_loss": loss}, step=state.step)
    patience = config.early_stopping_patience
    return bool(patience and state.evals_since_best >= patience and state.step >= config.min_steps)


def _throughput(state: ckpt.TrainerState, world: int, peak: float | None) -> tuple[float | None, float | None]:
    """Return (tokens/s per device, MFU) over the timed training steps; (None, None) before any."""
    if state.train_seconds <= 0:
        return None, None
    per_device = state.timed_tokens / state.train_seconds / world
    flops_per_token = state.timed_flops / state.timed_tokens if state.timed_tokens else 0.0
    return per_device, throughput.mfu(per_device, flops_per_token, peak)


def _finish_trackers(accelerator) -> None:
    # Not accelerator.end_training(): it also destroys the process group, which the caller
    # (a sweep or pretraining in one process, the torchrun worker) may still use.
    for tracker in accelerator.trackers:
        tracker.finish()


def _check_optimizer_kept(prepared, expected: type) -> None:
    """Fail when Accelerate/DeepSpeed replaced the optimizer we built (e.g. DeepSpeedCPUAdam)."""
    inner = getattr(prepared, "optimizer", prepared)
    inner = getattr(inner, "optimizer", inner)  # DeepSpeed ZeRO wraps the client optimizer
    if not isinstance(inner, expected):
        raise RuntimeError(f"optimizer was replaced by {type(inner).__name__}; expected {expected.__name__}")
