"""One run end to end: data -> base model -> method -> train -> evaluate -> RunRecord.

``run_spec`` is what ``scaling-repro run`` and every sweep backend call. Under ``torchrun``
every process calls it; training and evaluation are distributed, and only the main process
writes files. The run directory (:class:`~scaling_repro.results.RunDir`) holds ``spec.json``
(written first, so ``scaling-repro evaluate RUN_DIR`` can rebuild the run), checkpoints and
logs while training, and ``result.json`` last: a valid one means the run is done. A damaged
one is set aside and the run finished again from its checkpoints.

Modules that import torch (training, evaluation, collation, the token cache, DeepSpeed) are
imported inside the functions that use them, so that importing this module, and ``run`` of a
run that is already done, stay fast; everything else is imported here.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import time
from dataclasses import dataclass, replace
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from scaling_repro.config.errors import format_validation_error
from scaling_repro.config.recipe import EvalConfig, RunSpec
from scaling_repro.config.recipe_file import parse_override, set_path
from scaling_repro.data.tasks import load_task
from scaling_repro.data.types import Example, TaskData
from scaling_repro.errors import UserError
from scaling_repro.methods import MethodModel, apply_method
from scaling_repro.models.load import AS_RECIPE, LoadedModel, Placement, load_base_model, load_saved_model
from scaling_repro.ranks import current_process, is_main_process
from scaling_repro.results import RunDir, RunRecord, UnreadableResult, new_record
from scaling_repro.train import eval_weights
from scaling_repro.train.checkpoint_policy import drop_step_checkpoints
from scaling_repro.train.eval_weights import evaluation_device
from scaling_repro.train.metrics_log import LOG_FILE

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from scaling_repro.evaluate.run import EvalResult
    from scaling_repro.train.loop import TrainResult

log = logging.getLogger(__name__)

PACKAGES = ("scaling_repro", "torch", "transformers", "peft", "accelerate", "datasets", "deepspeed")


@dataclass
class PreparedRun:
    """Everything a run trains and evaluates, built from its RunSpec."""

    spec: RunSpec
    task: TaskData
    tokenizer: PreTrainedTokenizerBase
    model: torch.nn.Module  # the base model wrapped by its method
    base: LoadedModel
    method: MethodModel


def _remove_write_leftovers(run_dir: RunDir) -> None:
    """Delete what killed atomic writes of the run's files (spec, result, generations, training
    log) left in ``run_dir``."""
    from scaling_repro.evaluate.run import GENERATIONS_FILE

    run_dir.remove_write_leftovers(GENERATIONS_FILE, LOG_FILE)


def load_model(spec: RunSpec, placement: Placement = AS_RECIPE) -> tuple[LoadedModel, MethodModel]:
    """Return the base model and it wrapped by the method (the base on ``placement``'s device
    and in its dtype, when set)."""
    base = load_base_model(spec.model, seed=spec.seed, placement=placement)
    return base, apply_method(base.model, spec.method, seed=spec.seed, tokenizer=base.tokenizer)


def prepare(spec: RunSpec, *, for_training: bool = False, placement: Placement = AS_RECIPE) -> PreparedRun:
    """Load the task, the base model and wrap it with the method; return them.

    ``for_training`` under DeepSpeed ZeRO-3 loads pretrained weights partitioned over the ranks
    from the start (``deepspeed.zero.Init``), ready for the engine, so no rank holds the whole
    model. Random init is built whole, as without DeepSpeed: under ``zero.Init`` transformers
    draws the initial weights in another order, and ``train.deepspeed`` must not change what a
    run computes (it is not part of the run id).
    """
    from scaling_repro.train.distributed import sharded_construction

    task = load_task(spec.task, zero_shot=spec.eval.zero_shot, index_dir=token_cache_dir(spec))
    shard = for_training and spec.model.init == "pretrained"
    with sharded_construction(spec.train.deepspeed if shard else None, spec.train.precision) as sharded:
        base, method = load_model(spec, placement)
    if sharded:
        log.info("run %s: model built partitioned over the ranks (DeepSpeed ZeRO-3)", spec.run_id)
    log.info(
        "run %s: %s %s on %s (%d train examples, %s params %s, %s trainable)",
        spec.run_id,
        spec.method.kind,
        spec.model.name,
        spec.task.name,
        len(task.train),
        f"{base.model_params:,}",
        base.model_params_counted,
        f"{method.trainable_params:,}",
    )
    if method.adapted_modules:
        log.info("run %s: %s adapts %s", spec.run_id, spec.method.kind, ", ".join(method.adapted_modules))
    return PreparedRun(spec, task, base.tokenizer, method.model, base, method)


def token_cache_dir(spec: RunSpec) -> Path:
    """Return where encoded splits are cached for every run that shares them:
    ``task.cache_dir/token_cache`` when set, else ``output_dir/.token_cache``."""
    if spec.task.cache_dir:
        return Path(spec.task.cache_dir).expanduser() / "token_cache"
    return Path(spec.output_dir) / ".token_cache"


def _encode(run: PreparedRun, examples: list[Example], split: str):
    """The encoded examples as a read-only sequence over their memory-mapped cached copy."""
    from scaling_repro.data.token_cache import cached_encoding

    return cached_encoding(
        token_cache_dir(run.spec),
        run.tokenizer,
        examples,
        run.task.info,
        max_source_tokens=run.spec.task.max_source_tokens,
        max_target_tokens=run.spec.task.max_target_tokens,
        split=split,
    )


def train_prepared(run: PreparedRun) -> TrainResult:
    """Train the prepared model on its task; return the trainer's TrainResult."""
    from scaling_repro.data.collate import collate_for_lm, pad_token_id
    from scaling_repro.train.loop import train

    spec = run.spec
    return train(
        run.model,
        _encode(run, run.task.train, "train"),
        _encode(run, run.task.dev, "dev"),
        partial(collate_for_lm, pad_id=pad_token_id(run.tokenizer)),
        spec.run_dir,
        config=spec.train,
        lr=spec.method.lr,
        batch_size=spec.method.batch_size,
        seed=spec.seed,
    )


def training_autocast_dtype(spec: RunSpec) -> torch.dtype | None:
    """Return the autocast dtype the run trains with (bfloat16 for bf16 mixed precision), or
    None for fp32; evaluation uses the same."""
    import torch

    from scaling_repro.train.distributed import mixed_precision

    return torch.bfloat16 if mixed_precision(spec.train.precision) == "bf16" else None


def evaluate_prepared(run: PreparedRun) -> EvalResult:
    """Evaluate the prepared model (its weights as they are now); return the EvalResult."""
    from scaling_repro.evaluate.run import evaluate_model, write_generations

    result = evaluate_model(
        run.model,
        run.tokenizer,
        run.task,
        run.spec.eval,
        max_source_tokens=run.spec.task.max_source_tokens,
        max_target_tokens=run.spec.task.max_target_tokens,
        seed=run.spec.seed,
        autocast_dtype=training_autocast_dtype(run.spec),
    )
    if is_main_process() and result.generations:
        write_generations(run.spec.run_dir, result)
    return result


def environment() -> dict[str, Any]:
    """Return hardware, package versions and the git commit of this checkout."""
    import torch

    hardware: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "world_size": current_process().count,
    }
    if torch.cuda.is_available():
        hardware["gpu"] = torch.cuda.get_device_name(0)
        hardware["gpu_count"] = torch.cuda.device_count()
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=Path(__file__).parent,
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"hardware": hardware, "packages": packages, "git_commit": commit}


def base_record(run: PreparedRun, status: str = "ok") -> RunRecord:
    """Return a RunRecord with the run's identity, its factors and this environment filled in."""
    return new_record(
        run.spec,
        status,
        model_params=run.base.model_params,
        model_params_counted=run.base.model_params_counted,
        pretrain_tokens=run.base.pretrain_tokens,
        pet_params=run.method.pet_params,
        trainable_params=run.method.trainable_params,
        adapted_modules=list(run.method.adapted_modules),
        finetune_examples=len(run.task.train),
        **environment(),
    )


def run_spec(spec: RunSpec, sweep_source: Path | None = None) -> RunRecord:
    """Run one RunSpec end to end and return its RunRecord (also written to ``result.json``).

    A run whose ``result.json`` holds a record returns it without training. A run with
    checkpoints resumes. A non-finite loss ends the run with status ``failed: ...``. A run
    whose ``result.json`` this process cannot read (a teammate's, kept from the group by its
    modes) raises :class:`~scaling_repro.results.UnreadableResult` before anything is trained
    or moved.
    """
    run_dir = RunDir.of(spec)
    record = run_dir.finished_record()
    if record is not None:
        log.info("run %s is done (%s): %s", spec.run_id, record.status, run_dir.result_file)
        if record.spec.get("eval") != spec.eval.model_dump(mode="json"):
            log.warning(
                "run %s was evaluated with other eval settings; apply these with "
                "`scaling-repro evaluate %s eval.KEY=VALUE ...`",
                spec.run_id,
                spec.run_dir,
            )
        return record
    from scaling_repro.train.loop import NonFiniteLossError

    started = time.perf_counter()
    if is_main_process():
        _remove_write_leftovers(run_dir)
        run_dir.write_spec(spec, sweep_source)
    if spec.train.threads:
        import torch

        torch.set_num_threads(spec.train.threads)
    run = prepare(spec, for_training=True)
    record = base_record(run)
    prepare_seconds = time.perf_counter() - started
    try:
        trained = train_prepared(run)
    except NonFiniteLossError as err:
        record = record.model_copy(
            update={
                "status": f"failed: non-finite loss at step {err.step}",
                "wall_seconds": time.perf_counter() - started,
            }
        )
        if is_main_process():
            run_dir.write_result(record)
        return record
    eval_started = time.perf_counter()
    evaluation_weights(run, trained.best_checkpoint)
    evaluation = evaluate_prepared(run)
    eval_seconds = time.perf_counter() - eval_started
    trained_fields = trained.record_fields()
    record = record.model_copy(
        update={
            **evaluation.record_fields(),
            **trained_fields,
            "hardware": {**record.hardware, **trained_fields["hardware"]},
            # the trainer's wall time adds up its resumed sessions; ours covers this session only
            "wall_seconds": prepare_seconds + trained.wall_seconds + eval_seconds,
        }
    )
    if is_main_process():
        path = run_dir.write_result(record)
        log.info("run %s done: test loss %s -> %s", spec.run_id, _fmt(record.test_loss), path)
        drop_step_checkpoints(run_dir.path)  # a finished run never resumes; its best weights stay
    return record


def evaluation_weights(run: PreparedRun, best: Path | None) -> None:
    """Make ``run.model`` the model to evaluate: the best checkpoint's weights (``best``; None:
    as they are), whole on this process's device, in the training dtype, one copy (see
    :mod:`scaling_repro.train.eval_weights`). Without DeepSpeed the trained model is kept. Under
    DeepSpeed (ZeRO-3 partitions the module) the engine's module is dropped, then a full model
    is read from ``best`` straight onto the device, a PET model's base from the recipe, with
    the engine's HfDeepSpeedConfig unset (no ``zero.Init`` partitioning after training).
    """
    from scaling_repro.train.checkpoint import load_best_weights

    if not run.spec.train.deepspeed:
        eval_weights.drop_precision_wrapper(run.model)
        if best is not None:
            load_best_weights(run.model, best)
        return
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()
    placement = Placement(evaluation_device(), eval_weights.trained_dtype(run.model))
    run.base, run.method = replace(run.base, model=None), replace(run.method, model=None)  # type: ignore[arg-type]
    del run.model  # the engine's module goes before the weights are loaded
    eval_weights.free_accelerator_memory()
    if run.spec.method.kind == "full" and best is not None:
        model = load_saved_model(best, run.spec.model, placement)
        run.base, run.method = replace(run.base, model=model), replace(run.method, model=model)
        run.model = model
        return
    run.base, run.method = load_model(run.spec, placement)
    run.model = run.method.model.to(placement.device)  # PET parameters PEFT added on the CPU
    if best is not None:
        load_best_weights(run.model, best)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def with_eval_overrides(spec: RunSpec, overrides: list[str]) -> RunSpec:
    """Return ``spec`` with ``eval.*`` overrides applied (other sections would change the run)."""
    data = {"eval": spec.eval.model_dump(mode="json")}
    for text in overrides:
        path, value = parse_override(text)
        if not path.startswith("eval."):
            raise UserError(f"override {text!r}: only eval.* can change when re-evaluating a run")
        set_path(data, path, value)
    try:
        return spec.model_copy(update={"eval": EvalConfig.model_validate(data["eval"])})
    except ValidationError as err:
        raise UserError(format_validation_error(err, "override", prefix="eval")) from None


def reevaluate(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunRecord:
    """Re-run evaluation of a finished run's best checkpoint and rewrite its ``result.json``.

    ``overrides`` (``eval.key=value``) change the evaluation settings. Training fields of the
    old record are kept; evaluation fields and the recorded spec's ``eval`` are replaced. A
    damaged old record is set aside and the run finished again (:func:`run_spec`), which
    recovers its training fields from the checkpoints. One this process cannot read raises
    :class:`~scaling_repro.results.UnreadableResult`, changing nothing. The model is read
    straight onto this process's device, in the dtype its weights were trained in, and the
    best weights copied into it: one copy.
    """
    from scaling_repro.train.checkpoint import best_checkpoint, load_best_weights

    directory = RunDir(Path(run_dir))
    spec = with_eval_overrides(directory.read_spec(), list(overrides))
    result = directory.read_result()
    if result.kind == "unreadable":  # a teammate's run: evaluating it would write over its result
        raise UnreadableResult(result)
    if result.kind == "damaged":
        if spec.run_dir.resolve() != directory.path.resolve():
            raise UserError(
                f"{directory.path} is not at {spec.run_dir}, where its spec places it: move it back and "
                f"finish the run with `scaling-repro run RECIPE --run-id {spec.run_id}`"
            )
        return run_spec(spec)
    if is_main_process():
        _remove_write_leftovers(directory)
    best = best_checkpoint(directory.path)
    if best is None and spec.train.max_steps > 0:
        raise UserError(f"{directory.path}: no best checkpoint to evaluate (did training run?)")
    # straight to the trainer's device, in the dtype training held the weights in (DeepSpeed bf16: bfloat16)
    dtype = training_autocast_dtype(spec) if spec.train.deepspeed else None
    run = prepare(spec, placement=Placement(evaluation_device(), dtype))
    if best is not None:
        load_best_weights(run.model, best)
    run.model = run.model.to(evaluation_device())  # PET parameters PEFT added on the CPU
    evaluation = evaluate_prepared(run)
    record = result.record or base_record(run)
    record = record.model_copy(update={**evaluation.record_fields(), "spec": spec.model_dump(mode="json")})
    if is_main_process():
        directory.write_spec(spec)
        directory.write_result(record)
    return record
