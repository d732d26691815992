"""A paper recipe's run through the pipeline's own stages, on a ``local`` task of WMT-like
synthetic text: ``prepare`` (data, model, method), ``train_prepared`` (the recipe's optimizer,
precision, DeepSpeed stage; 3 steps with the dev evaluation and best checkpoint at step 3),
the reload ``run_spec`` does, ``evaluate_prepared`` (test loss and greedy decoding) watched by
forward hooks, then the best checkpoint loaded into a fresh model with the dev loss
recomputed by the evaluator.

What must hold: evaluation runs on the training device in the training precision (every
decoder linear output and the LM head in bf16 for a bf16 run; logits not widened to fp32 by
a leftover output wrapper), and the fresh model with the best weights gives the dev loss the
trainer recorded for them, and loading them changes the fresh model's trainable weights.
"""

from __future__ import annotations

from typing import Any

from scaling_repro.gpu_checks import lengths
from scaling_repro.gpu_checks.fixtures import (
    check_spec,
    local_task,
    per_gpu_batch,
    recipe_run,
    without_deepspeed_unless_available,
    write_tokenizer,
)
from scaling_repro.gpu_checks.models import dtype_name
from scaling_repro.gpu_checks.probes import DtypeProbe
from scaling_repro.gpu_checks.runner import Check, Context, memory_now, memory_peak, outcome
from scaling_repro.gpu_checks.stages import evaluator_dev_loss, fresh_model, release, reload_for_evaluation

STEPS = 3


def tolerance(autocast: Any) -> float:
    """Return the relative gap allowed between two dev losses of the same weights: bf16
    kernels differ between the trainer's (packed, DeepSpeed's bf16 module) and the
    evaluator's batches; fp32 does not."""
    return 5e-3 if autocast is not None else 1e-4


def fingerprint(model: Any) -> list[tuple[float, float]]:
    """Return (sum, norm) in float64 of every trainable tensor of ``model``: a change of any
    weight changes them (a few steps may move the dev loss less than bf16's tolerance)."""
    import torch

    with torch.no_grad():
        return [(float(p.double().sum()), float(p.double().norm())) for p in model.parameters() if p.requires_grad]


def pipeline_path(kind: str) -> Check:
    """Return the check of the 1B WMT14 recipe of method ``kind`` (fmt, lora, prompt)."""

    def check(ctx: Context, figures: dict[str, Any]) -> str:
        from scaling_repro import pipeline
        from scaling_repro.train.checkpoint import load_best_weights

        sizes = ctx.sizes
        recipe = recipe_run(f"wmt_{kind}")
        scratch = ctx.folder(f"pipeline-{kind}")
        law = lengths.WMT.scaled(sizes.length_scale)
        batch = 4 if ctx.smoke else per_gpu_batch(recipe)
        train: dict[str, Any] = dict(
            max_steps=STEPS,
            eval_every=STEPS,
            log_every=1,
            checkpoint_every=None,
            trackers=[],
            micro_batch_size=2 if ctx.smoke else recipe.train.micro_batch_size,
        )
        without_deepspeed_unless_available(train, recipe, figures)
        eval_ = dict(
            batch_size=sizes.eval_batch,
            generate=True,
            max_generate_examples=sizes.generate_examples,
            max_new_tokens=sizes.new_tokens,
            few_shot=[],
            zero_shot=False,
            metrics=["bleu"],
        )
        task = local_task(
            scratch / "task", law, sizes.vocab, batch * STEPS, sizes.dev_examples, sizes.generate_examples
        )
        model = {
            "name": sizes.config,
            "init": "random",
            "tokenizer": str(write_tokenizer(scratch / "tok", sizes.vocab)),
        }
        spec = check_spec(recipe, scratch / "runs", task, model, train, eval_, method={"batch_size": batch})
        autocast = pipeline.training_autocast_dtype(spec)
        expected = dtype_name(autocast)
        figures.update(model=f"{sizes.config}, vocab {sizes.vocab}", batch=batch, expected_dtype=expected)

        run = pipeline.prepare(spec, for_training=True)
        trained = pipeline.train_prepared(run)
        figures.update(steps=trained.steps, best_dev_loss=trained.best_dev_loss, train_peak_GiB=memory_peak())
        reload_for_evaluation(run, trained)
        trained_dtype = next(run.model.parameters()).dtype
        figures["reloaded_param_dtype"] = dtype_name(trained_dtype)
        with DtypeProbe(run.model) as probe:
            evaluation = pipeline.evaluate_prepared(run)
        figures.update(
            eval_devices=sorted(probe.devices),
            linear=f"{probe.linear_name}: {probe.dtypes('linear')}",
            lm_head=probe.dtypes("lm_head"),
            lm_head_positions=probe.head_rows,
            logits=probe.dtypes("logits"),
            test_loss=evaluation.test_loss,
            bleu=evaluation.metrics.get("bleu", {}).get("all"),
            eval_memory_GiB=memory_now(),
        )
        best = trained.best_checkpoint
        release(run)
        fresh = fresh_model(spec, trained_dtype)
        figures["fresh_dev_loss"] = evaluator_dev_loss(fresh, run)
        before = fingerprint(fresh)
        load_best_weights(fresh, best)
        changed = sum(a != b for a, b in zip(before, fingerprint(fresh)))
        figures["trainable_tensors_changed_by_the_load"] = f"{changed} of {len(before)}"
        figures["reloaded_dev_loss"] = evaluator_dev_loss(fresh, run)

        problems = []
        device = "cuda" if ctx.on_gpu else "cpu"
        if probe.devices != {device}:
            problems.append(f"evaluation ran on {sorted(probe.devices)}, not {device}")
        for key in ("linear", "lm_head"):
            if probe.only(key) != {expected}:
                problems.append(f"{key} outputs {probe.dtypes(key)}, not {expected}")
        if probe.only("logits") - {expected}:
            problems.append(f"logits reach the loss as {probe.dtypes('logits')} (an fp32 output wrapper?)")
        tol = tolerance(autocast) * abs(trained.best_dev_loss)
        gap = abs(figures["reloaded_dev_loss"] - trained.best_dev_loss)
        figures["reload_gap"] = gap
        if gap > tol:
            problems.append(
                f"the best weights reloaded give dev loss {figures['reloaded_dev_loss']:.4f}, "
                f"the trainer's {trained.best_dev_loss:.4f}"
            )
        if not changed:
            problems.append("loading the best checkpoint changed none of the fresh model's trainable weights")
        return outcome(problems, figures, ctx)

    return check
