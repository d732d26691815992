"""The pipeline's own steps after training, for the checks to run one at a time and measure
between: the reload :func:`scaling_repro.pipeline.run_spec` does before evaluating, a fresh
model as that reload builds it, and a dev loss through the evaluator.
"""

from __future__ import annotations

from typing import Any

import torch

from scaling_repro.config.recipe import EvalConfig, RunSpec


def reload_for_evaluation(run: Any, trained: Any) -> None:
    """Do to ``run`` (a PreparedRun) what ``run_spec`` does between training and evaluation
    (:func:`scaling_repro.pipeline.evaluation_weights`)."""
    from scaling_repro import pipeline

    pipeline.evaluation_weights(run, trained.best_checkpoint)


def weights_dtype(spec: RunSpec) -> torch.dtype:
    """Return the dtype a run's weights have after training: bfloat16 where DeepSpeed trains
    them in bf16, float32 where autocast computes in bf16 over float32 weights (or in fp32)."""
    from scaling_repro.pipeline import training_autocast_dtype

    autocast = training_autocast_dtype(spec)
    return autocast if spec.train.deepspeed and autocast is not None else torch.float32


def fresh_model(spec: RunSpec, dtype: torch.dtype) -> torch.nn.Module:
    """Return the run's model as the pipeline loads it for evaluation (base + method, whole,
    on the evaluation device, in ``dtype``), before any trained weights are loaded into it."""
    from scaling_repro import pipeline
    from scaling_repro.models.placement import Placement
    from scaling_repro.train.distributed import whole_construction
    from scaling_repro.train.eval_weights import evaluation_device

    placement = Placement(evaluation_device(), dtype)
    with whole_construction():
        _, method = pipeline.load_model(spec, placement)
    return method.model.to(placement.device)  # PET parameters PEFT added on the CPU


def evaluator_dev_loss(model: torch.nn.Module, run: Any) -> float:
    """Return the dev loss of ``model`` computed by the evaluator (test-loss path, the
    pipeline's autocast) on ``run``'s dev set."""
    from scaling_repro.data.types import TaskData
    from scaling_repro.evaluate.run import evaluate_model
    from scaling_repro.pipeline import training_autocast_dtype

    task = TaskData(run.task.info, [], [], test={"dev": list(run.task.dev)})
    result = evaluate_model(
        model,
        run.tokenizer,
        task,
        EvalConfig(batch_size=run.spec.eval.batch_size, generate=False),
        max_source_tokens=run.spec.task.max_source_tokens,
        max_target_tokens=run.spec.task.max_target_tokens,
        autocast_dtype=training_autocast_dtype(run.spec),
    )
    assert result.test_loss is not None
    return result.test_loss


def release(run: Any) -> None:
    """Drop ``run``'s model (and DeepSpeed's module) and free its device memory."""
    import gc

    run.model = run.method = run.base = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
