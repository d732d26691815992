"""ZeRO-3 on one GPU, the 8B/16B recipes' path at 1B: the pretrained model built partitioned
from the start (``prepare(for_training=True)`` under ``sharded_construction``), 3 steps with
activation checkpointing and a resumable checkpoint, then the reload ``run_spec`` does
before evaluating, with device memory before and after each stage.

What must hold: every parameter is partitioned when built, the step checkpoint is written,
the reloaded model gives the trainer's best dev loss, and after the reload no DeepSpeed engine
is left alive (counted on the CPU too) and the device holds about one copy of the reloaded
model (not also the engine's partitions and optimizer state).
"""

from __future__ import annotations

from typing import Any

from scaling_repro.gpu_checks import lengths
from scaling_repro.gpu_checks.fixtures import check_spec, local_task, recipe_run, write_tokenizer
from scaling_repro.gpu_checks.models import build
from scaling_repro.gpu_checks.pipeline_path import STEPS, tolerance
from scaling_repro.gpu_checks.runner import Check, Context, gib, memory_now, memory_peak, outcome
from scaling_repro.gpu_checks.stages import evaluator_dev_loss, reload_for_evaluation


def write_pretrained(folder, config_name: str, vocab: int) -> str:
    """Write a randomly initialized model of ``config_name`` as a pretrained checkpoint (bf16
    weights: half the bytes to write and read; word-level tokenizer, scaling_repro_meta.json)
    to ``folder``; return its path."""
    import torch

    from scaling_repro.models.load import CheckpointMeta, write_checkpoint_meta

    model = build(config_name, vocab, dtype=torch.bfloat16)
    model.save_pretrained(str(folder))
    del model
    write_tokenizer(folder, vocab)
    write_checkpoint_meta(folder, CheckpointMeta(config_name=config_name, pretrain_tokens=0))
    return str(folder)


def live_engines() -> int:
    """Return how many DeepSpeed engines are still alive (referenced) in this process."""
    import gc

    from deepspeed import DeepSpeedEngine

    gc.collect()
    return sum(isinstance(obj, DeepSpeedEngine) for obj in gc.get_objects())


def zero3() -> Check:
    """Return the ZeRO-3 construction, training and reload check."""

    def check(ctx: Context, figures: dict[str, Any]) -> str:
        from scaling_repro import pipeline
        from scaling_repro.train.checkpoint import latest_checkpoint

        figures["deepspeed"] = ctx.require_deepspeed()
        sizes = ctx.sizes
        recipe = recipe_run("wmt_fmt", "paper-8b")  # the recipes' ZeRO-3 settings
        scratch = ctx.folder("zero3")
        micro = 2 if ctx.smoke else recipe.train.micro_batch_size or 16
        train: dict[str, Any] = dict(
            max_steps=STEPS, eval_every=STEPS, log_every=1, checkpoint_every=STEPS, trackers=[], micro_batch_size=micro
        )
        task = local_task(
            scratch / "task", lengths.WMT.scaled(sizes.length_scale), sizes.vocab, micro * STEPS, sizes.dev_examples, 1
        )
        model = {"name": sizes.config, "init": "pretrained", "pretrain_tokens": 0}
        model["path"] = write_pretrained(scratch / "base", sizes.config, sizes.vocab)
        spec = check_spec(
            recipe, scratch / "runs", task, model, train, {"generate": False}, method={"batch_size": micro}
        )
        figures.update(
            model=f"{sizes.config}, vocab {sizes.vocab}",
            train=f"{spec.train.deepspeed}, gradient checkpointing {spec.train.gradient_checkpointing}, micro {micro}",
            before_GiB=memory_now(),
        )
        run = pipeline.prepare(spec, for_training=True)
        params = list(run.model.parameters())
        partitioned = sum(hasattr(p, "ds_id") for p in params)
        figures.update(partitioned_params=f"{partitioned} of {len(params)}", built_GiB=memory_now())
        trained = pipeline.train_prepared(run)
        step_checkpoint = latest_checkpoint(spec.run_dir)
        figures.update(
            steps=trained.steps,
            step_checkpoint=step_checkpoint.name if step_checkpoint else None,
            train_peak_GiB=memory_peak(),
            trained_GiB=memory_now(),
            best_dev_loss=trained.best_dev_loss,
        )
        reload_for_evaluation(run, trained)
        figures["engines_alive_after_reload"] = live_engines()
        reloaded = list(run.model.parameters())
        model_bytes = sum(p.numel() * p.element_size() for p in reloaded)
        figures.update(
            reloaded=f"{str(reloaded[0].dtype).removeprefix('torch.')} on {reloaded[0].device.type}",
            reloaded_model_GiB=gib(model_bytes),
            after_reload_GiB=memory_now(),
        )
        figures["reloaded_dev_loss"] = evaluator_dev_loss(run.model, run)

        problems = []
        if partitioned != len(params):
            problems.append(f"only {partitioned} of {len(params)} parameters were built partitioned")
        if step_checkpoint is None:
            problems.append("no step checkpoint was written")
        gap = abs(figures["reloaded_dev_loss"] - trained.best_dev_loss)
        if gap > tolerance(pipeline.training_autocast_dtype(spec)) * abs(trained.best_dev_loss):
            problems.append(
                f"the reloaded model's dev loss is {figures['reloaded_dev_loss']:.4f}, not {trained.best_dev_loss:.4f}"
            )
        if figures["engines_alive_after_reload"]:
            problems.append("a DeepSpeed engine is still referenced after the reload (its state stays allocated)")
        after = figures["after_reload_GiB"]
        if after is not None and after > 1.25 * gib(model_bytes) + 0.5:
            problems.append(f"{after} GiB held after the reload, for a {gib(model_bytes)} GiB model")
        return outcome(problems, figures, ctx)

    return check
