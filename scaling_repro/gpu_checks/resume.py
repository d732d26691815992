"""Preemption and resume: a run asked to stop after step 3 (the SIGTERM path: it writes the
checkpoint of the step it reached, between the step checkpoints of its dev evaluations at
steps 2 and 4, and raises ``TrainingPreempted``), rerun from a freshly built model in the
same run directory, must log the same losses as an uninterrupted run: every train line and
the dev evaluations. Checked without DeepSpeed and under ZeRO-2 (whose
checkpoints DeepSpeed itself writes and reads back).

On a GPU the two runs may differ in the last bits (kernels with atomics are not bitwise
reproducible); the row gives the largest relative gap, and more than 1e-3 fails.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from scaling_repro.gpu_checks import lengths
from scaling_repro.gpu_checks.models import build, device
from scaling_repro.gpu_checks.runner import Check, Context

STOP_AT, STEPS, EVAL_EVERY, GPU_TOLERANCE = 3, 4, 2, 1e-3


def losses(run_dir: Path) -> list[tuple[str, int, float]]:
    """Return (event, step, loss) of every train and eval line of a run's log."""
    from scaling_repro.train.metrics_log import read_log

    return [
        (r["event"], r["step"], r["train_loss"] if r["event"] == "train" else r["dev_loss"])
        for r in read_log(run_dir)
        if r["event"] in ("train", "eval")
    ]


def largest_gap(a: list[tuple[str, int, float]], b: list[tuple[str, int, float]]) -> float:
    """Return the largest relative gap between two equally long loss logs (inf when their
    events or steps differ)."""
    if [x[:2] for x in a] != [y[:2] for y in b]:
        return float("inf")
    return max((abs(x[2] - y[2]) / max(abs(x[2]), 1e-12) for x, y in zip(a, b)), default=0.0)


def resume(deepspeed: str | None) -> Check:
    """Return the stop-at-3-and-rerun check, under the DeepSpeed config ``deepspeed`` or none."""

    def check(ctx: Context, figures: dict[str, Any]) -> str:
        from scaling_repro.config.recipe import TrainConfig
        from scaling_repro.data.collate import collate_for_lm
        from scaling_repro.train import stop
        from scaling_repro.train.loop import StepInfo, train

        if deepspeed:
            figures["deepspeed"] = ctx.require_deepspeed()
        sizes = ctx.sizes
        batch = 4
        data = lengths.encoded_examples(lengths.WMT.scaled(sizes.length_scale), batch * STEPS, sizes.small_vocab)
        config = TrainConfig(
            max_steps=STEPS, eval_every=EVAL_EVERY, log_every=1, micro_batch_size=batch // 2, deepspeed=deepspeed
        )
        figures.update(model=f"{sizes.small_config}, vocab {sizes.small_vocab}", precision=config.precision)

        def run(run_dir: Path, on_step=None) -> None:
            model = build(sizes.small_config, sizes.small_vocab, device=device())
            train(
                model,
                data,
                data[:batch],
                partial(collate_for_lm, pad_id=lengths.PAD_ID),
                run_dir,
                config=config,
                lr=1e-3,
                batch_size=batch,
                seed=0,
                on_step=on_step,
            )

        whole, stopped = ctx.folder("resume-whole"), ctx.folder("resume-stopped")
        run(whole)

        def preempt_at_stop(info: StepInfo) -> None:
            if info.step == STOP_AT:
                stop.request_preemption()

        try:
            run(stopped, preempt_at_stop)
            return f"FAIL: the run was asked to stop after step {STOP_AT} and did not"
        except stop.TrainingPreempted as err:
            figures["stopped_at"] = err.step
        finally:
            stop.clear_preemption()
        run(stopped)
        a, b = losses(whole), losses(stopped)
        gap = largest_gap(a, b)
        figures.update(log_lines=len(a), largest_relative_gap=gap)
        if gap == 0:
            return "ok"
        if gap <= GPU_TOLERANCE and ctx.on_gpu:
            return "ok (equal within 1e-3: GPU kernels are not bitwise reproducible)"
        return f"FAIL: the resumed run's losses differ from the uninterrupted run's (largest relative gap {gap:.3g})"

    return check
