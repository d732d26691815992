"""Training speed on a paper recipe's own path: its optimizer, precision, DeepSpeed stage
and micro-batch, one GPU's share of its global batch, WMT-like or MLSum-like lengths.

The loop is :func:`scaling_repro.train.loop.train` itself. The first steps are warm-up
(allocator, kernels, DeepSpeed buckets); the figures cover the steps after them only, read
from the trainer state at two steps where the loop waits for the device (its log steps), so
host time is device time. MFU is :func:`scaling_repro.train.throughput.mfu` of the FLOPs
the loop itself counted for those steps. The run stops before a final evaluation or
checkpoint (a stop request), which the figures would not include anyway.
"""

from __future__ import annotations

from typing import Any

from scaling_repro.config.recipe import TrainConfig
from scaling_repro.gpu_checks import lengths
from scaling_repro.gpu_checks.fixtures import per_gpu_batch, recipe_run, without_deepspeed_unless_available
from scaling_repro.gpu_checks.models import build, device
from scaling_repro.gpu_checks.runner import Check, Context, memory_peak, outcome


def train_speed(task: str) -> Check:
    """Return the check of the 1B FMT recipe's training speed on ``task`` ("wmt" or "mlsum")."""

    def check(ctx: Context, figures: dict[str, Any]) -> str:
        from functools import partial

        import torch

        from scaling_repro.data.collate import collate_for_lm
        from scaling_repro.methods import apply_method
        from scaling_repro.train import stop, throughput
        from scaling_repro.train.loop import StepInfo, train

        sizes = ctx.sizes
        recipe = recipe_run(f"{task}_fmt")
        warm, timed = sizes.warmup_steps, sizes.timed_steps
        if (warm + timed) % warm:
            raise ValueError(f"warm-up {warm} must divide warm-up + timed steps {warm + timed}")
        batch = per_gpu_batch(recipe) if not ctx.smoke else 4
        micro = recipe.train.micro_batch_size if not ctx.smoke else 2
        update: dict[str, Any] = dict(
            max_steps=10 * (warm + timed),
            max_epochs=1e6,
            eval_every=10**9,
            log_every=warm,  # the loop reads the loss (waits for the device) at multiples of it
            checkpoint_every=None,
            checkpoint_minutes=None,
            trackers=[],
            micro_batch_size=micro,
        )
        without_deepspeed_unless_available(update, recipe, figures)
        config = TrainConfig.model_validate({**recipe.train.model_dump(), **update})
        law = lengths.LAWS[task].scaled(sizes.length_scale)
        data = lengths.encoded_examples(law, batch * (warm + timed), sizes.vocab)
        figures.update(
            model=f"{sizes.config}, vocab {sizes.vocab}",
            precision=config.precision,
            batch=f"{batch} (micro {micro or batch})",
            lengths=lengths.length_summary(data),
        )
        model = apply_method(build(sizes.config, sizes.vocab, device=device()), recipe.method, seed=0).model
        marks: dict[int, tuple[float, int, float]] = {}

        def on_step(info: StepInfo) -> None:
            if info.step in (warm, warm + timed):
                state = info.state
                marks[info.step] = (state.train_seconds, state.timed_tokens, state.timed_flops)

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        run_dir = ctx.folder(f"speed-{task}")
        with stop.stop_when(lambda: warm + timed in marks):
            try:
                collate = partial(collate_for_lm, pad_id=lengths.PAD_ID)
                train(
                    model,
                    data,
                    data[:2],
                    collate,
                    run_dir,
                    config=config,
                    lr=recipe.method.lr,
                    batch_size=batch,
                    seed=0,
                    on_step=on_step,
                )
            except stop.TrainingStopped:
                pass
        (s0, t0, f0), (s1, t1, f1) = marks[warm], marks[warm + timed]
        tokens_per_second = (t1 - t0) / (s1 - s0)
        peak = throughput.peak_bf16_flops(device())
        figures.update(
            timed_steps=f"{timed} after {warm} warm-up",
            step_ms=round(1000 * (s1 - s0) / timed, 1),
            tokens_per_step=round((t1 - t0) / timed),
            tokens_per_s_per_gpu=round(tokens_per_second),
            MFU=throughput.mfu(tokens_per_second, (f1 - f0) / (t1 - t0), peak),
            peak_GiB=memory_peak(),
        )
        return outcome([], figures, ctx)

    return check
