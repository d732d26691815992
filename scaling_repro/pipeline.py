"""One run end to end: data -> base model -> method -> train -> evaluate -> RunRecord.

``run_spec`` is what ``scaling-repro run`` and every sweep backend call. Under ``torchrun``
every process calls it; training and evaluation are distributed, and only the main process
writes files. The run directory holds ``spec.json`` (written first, so ``scaling-repro
evaluate RUN_DIR`` can rebuild the run), checkpoints and logs while training, and
``result.json`` last: a readable one means the run is done. An unreadable one is moved to
``result.unreadable.json`` and the run finished again from its checkpoints.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from scaling_repro.config.recipe import RunSpec
from scaling_repro.errors import UserError, one_line
from scaling_repro.fileio import atomic_write_json, remove_write_leftovers
from scaling_repro.ranks import current_process, is_main_process
from scaling_repro.results import RESULT_FILE, RunRecord, adopt_legacy_run_dir, read_record

log = logging.getLogger(__name__)

SPEC_FILE = "spec.json"
UNREADABLE_RESULT_FILE = "result.unreadable.json"  # an unreadable result.json, kept for inspection
PACKAGES = ("scaling_repro", "torch", "transformers", "peft", "accelerate", "datasets", "deepspeed")


@dataclass
class PreparedRun:
    """Everything a run trains and evaluates, built from its RunSpec."""

    spec: RunSpec
    task: Any  # data.types.TaskData
    tokenizer: Any
    model: Any  # the base model wrapped by its method
    base: Any  # models.load.LoadedModel
    method: Any  # methods.MethodModel


def write_spec(spec: RunSpec, sweep_source: Path | None = None) -> Path:
    """Write ``run_dir/spec.json`` (the RunSpec and its recipe) atomically; return its path."""
    path = spec.run_dir / SPEC_FILE
    data = {
        "spec": spec.model_dump(mode="json"),
        "run_id": spec.run_id,
        "recipe": None if sweep_source is None else str(sweep_source),
    }
    atomic_write_json(path, data)
    return path


def read_spec(run_dir: str | Path) -> RunSpec:
    """Return the RunSpec saved in ``run_dir/spec.json``."""
    path = Path(run_dir) / SPEC_FILE
    if not path.is_file():
        raise UserError(f"{run_dir}: no {SPEC_FILE}; is this a run directory of scaling-repro run?")
    import json

    try:
        spec = RunSpec.model_validate(json.loads(path.read_text(encoding="utf-8"))["spec"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(
            f"{path} is unreadable ({one_line(err)}); `scaling-repro run RECIPE` writes it again for the recipe's run"
        ) from None
    # The directory may have moved since: the spec keeps its identity, the files stay here.
    return spec.model_copy(update={"output_dir": str(Path(run_dir).resolve().parent.parent)})


def finished_record(run_dir: Path) -> RunRecord | None:
    """Return the RunRecord of ``run_dir/result.json``, or None when the run is not done: no
    result, or an unreadable one, which the main process moves to ``result.unreadable.json``
    (kept, never trusted) with a warning naming it."""
    path = Path(run_dir) / RESULT_FILE
    try:
        return read_record(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        if is_main_process():
            log.warning(
                "%s is unreadable (%s): the run is not done; finishing it again from its checkpoints "
                "(the file is kept as %s)",
                path,
                one_line(err),
                UNREADABLE_RESULT_FILE,
            )
            os.replace(path, path.with_name(UNREADABLE_RESULT_FILE))
        return None


def _remove_write_leftovers(run_dir: Path) -> None:
    from scaling_repro.evaluate.run import GENERATIONS_FILE
    from scaling_repro.train.metrics_log import LOG_FILE

    for path in remove_write_leftovers(run_dir, [SPEC_FILE, RESULT_FILE, GENERATIONS_FILE, LOG_FILE]):
        log.info("removed %s, left by a write that was killed", path)


def load_model(spec: RunSpec):
    """Return the base model (LoadedModel) and it wrapped by the method (MethodModel)."""
    from scaling_repro.methods import apply_method
    from scaling_repro.models.load import load_base_model

    base = load_base_model(spec.model, seed=spec.seed)
    return base, apply_method(base.model, spec.method, seed=spec.seed, tokenizer=base.tokenizer)


def prepare(spec: RunSpec, *, for_training: bool = False) -> PreparedRun:
    """Load the task, the base model and wrap it with the method; return them.

    ``for_training`` under DeepSpeed ZeRO-3 loads pretrained weights partitioned over the ranks
    from the start (``deepspeed.zero.Init``), ready for the engine, so no rank holds the whole
    model. Random init is built whole, as without DeepSpeed: under ``zero.Init`` transformers
    draws the initial weights in another order, and ``train.deepspeed`` must not change what a
    run computes (it is not part of the run id).
    """
    from scaling_repro.data.tasks import load_task
    from scaling_repro.train.distributed import sharded_construction

    task = load_task(spec.task, zero_shot=spec.eval.zero_shot)
    shard = for_training and spec.model.init == "pretrained"
    with sharded_construction(spec.train.deepspeed if shard else None, spec.train.precision) as sharded:
        base, method = load_model(spec)
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


def _encode(run: PreparedRun, examples: list, split: str):
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


def train_prepared(run: PreparedRun):
    """Train the prepared model on its task; return the trainer's TrainResult."""
    from scaling_repro.data.collate import collate_for_lm, pad_token_id
    from scaling_repro.train.loop import train_run

    collate = partial(collate_for_lm, pad_id=pad_token_id(run.tokenizer))
    return train_run(
        run.spec,
        run.model,
        _encode(run, run.task.train, "train"),
        _encode(run, run.task.dev, "dev"),
        collate,
        run.spec.run_dir,
    )


def training_autocast_dtype(spec: RunSpec):
    """Return the autocast dtype the run trains with (bfloat16 for bf16 mixed precision), or
    None for fp32; evaluation uses the same."""
    import torch

    from scaling_repro.train.distributed import mixed_precision

    return torch.bfloat16 if mixed_precision(spec.train.precision) == "bf16" else None


def evaluation_device():
    """Return the device this process trains on: its GPU (``LOCAL_RANK``) when there is one."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def evaluate_prepared(run: PreparedRun):
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


def _free_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


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
    """Return a RunRecord with the run's identity and factors filled in."""
    spec = run.spec
    return RunRecord(
        run_id=spec.run_id,
        name=spec.name,
        status=status,
        spec=spec.model_dump(mode="json"),
        held_out=spec.held_out,
        task=spec.task.name,
        method=spec.method.kind,
        model=spec.model.name,
        model_params=run.base.model_params,
        model_params_counted=run.base.model_params_counted,
        pretrain_tokens=run.base.pretrain_tokens,
        pet_params=run.method.pet_params,
        trainable_params=run.method.trainable_params,
        adapted_modules=list(run.method.adapted_modules),
        finetune_examples=len(run.task.train),
        seed=spec.task.seed,
        **environment(),
    )


def run_spec(spec: RunSpec, sweep_source: Path | None = None) -> RunRecord:
    """Run one RunSpec end to end and return its RunRecord (also written to ``result.json``).

    A run whose ``result.json`` exists returns that record without training. A run with
    checkpoints resumes. A non-finite loss ends the run with status ``failed: ...``.
    """
    from scaling_repro.train.loop import NonFiniteLossError

    adopt_legacy_run_dir(spec)
    result_path = spec.run_dir / RESULT_FILE
    record = finished_record(spec.run_dir)
    if record is not None:
        log.info("run %s is done (%s): %s", spec.run_id, record.status, result_path)
        if record.spec.get("eval") != spec.eval.model_dump(mode="json"):
            log.warning(
                "run %s was evaluated with other eval settings; apply these with "
                "`scaling-repro evaluate %s eval.KEY=VALUE ...`",
                spec.run_id,
                spec.run_dir,
            )
        return record
    started = time.perf_counter()
    if is_main_process():
        _remove_write_leftovers(spec.run_dir)
        write_spec(spec, sweep_source)
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
            record.write(spec.run_dir)
        return record
    eval_started = time.perf_counter()
    if spec.train.deepspeed:
        # DeepSpeed (ZeRO-3) leaves the trained module partitioned: evaluate a fresh copy,
        # loaded whole (outside sharded_construction, and with the engine's HfDeepSpeedConfig
        # dropped: no zero.Init partitioning now that training is over).
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()
        run.model = run.method = run.base = None  # drop the engine's module before loading the copy
        _free_accelerator_memory()
        run.base, run.method = load_model(spec)
        run.model = run.method.model.to(evaluation_device())
    if trained.best_checkpoint is not None:
        trained.load_best(run.model)
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
        record.write(spec.run_dir)
        log.info(
            "run %s done: test loss %s, best step %s -> %s",
            spec.run_id,
            _fmt(record.test_loss),
            record.best_step,
            result_path,
        )
    return record


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def with_eval_overrides(spec: RunSpec, overrides: list[str]) -> RunSpec:
    """Return ``spec`` with ``eval.*`` overrides applied (other sections would change the run)."""
    from pydantic import ValidationError

    from scaling_repro.config.errors import format_validation_error
    from scaling_repro.config.recipe import EvalConfig
    from scaling_repro.config.sweep import parse_override, set_path

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
    old record are kept; evaluation fields and the recorded spec's ``eval`` are replaced. An
    unreadable old record is set aside and the run finished again (:func:`run_spec`), which
    recovers its training fields from the checkpoints.
    """
    from scaling_repro.train.checkpoint import best_checkpoint, load_best_weights

    run_dir = Path(run_dir)
    spec = with_eval_overrides(read_spec(run_dir), list(overrides))
    had_result = (run_dir / RESULT_FILE).is_file()
    old = finished_record(run_dir)
    if had_result and old is None:
        if spec.run_dir.resolve() != run_dir.resolve():
            raise UserError(
                f"{run_dir} is not at {spec.run_dir}, where its spec places it: move it back and "
                f"finish the run with `scaling-repro run RECIPE --run-id {spec.run_id}`"
            )
        return run_spec(spec)
    if is_main_process():
        _remove_write_leftovers(run_dir)
    run = prepare(spec)
    best = best_checkpoint(run_dir)
    if best is None and spec.train.max_steps > 0:
        raise UserError(f"{run_dir}: no best checkpoint to evaluate (did training run?)")
    if best is not None:
        load_best_weights(run.model, best)
    run.model = run.model.to(evaluation_device())  # the trainer's device, not the CPU
    evaluation = evaluate_prepared(run)
    record = old or base_record(run)
    record = record.model_copy(update={**evaluation.record_fields(), "spec": spec.model_dump(mode="json")})
    if is_main_process():
        write_spec(spec)
        record.write(run_dir)
    return record
