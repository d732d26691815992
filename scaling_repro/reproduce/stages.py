"""The stages of a reproduction before finetuning: data (tasks, tokenizer) and pretraining.

Each stage skips what is already done (a second invocation of a finished study does no work)
and returns a :class:`StageResult` with its one-line summary. The plan and its recipes name
paths relative to the study's output directory ``out_dir`` (``pretrained/``, ``runs/``): the
stages join them to it, and run the pretraining and finetuning processes in it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from scaling_repro.config.recipe import RunSpec, TaskConfig
from scaling_repro.config.study_plan import PRETRAINED_DIR, BaseModelPlan, StudyPlan
from scaling_repro.errors import RecipeError, UserError
from scaling_repro.models.pretrain_tokens import META_FILE
from scaling_repro.reproduce.plan_runs import load_finetune_specs, pretrain_overrides
from scaling_repro.reproduce.provenance import check_settings, model_settings, record_settings, tokenizer_settings

__all__ = ["StageResult", "load_finetune_specs", "prepare_data", "pretrain_models"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageResult:
    """What one stage did: its name, wall seconds and a one-line summary."""

    name: str
    seconds: float
    summary: str
    work_done: bool = True  # False when everything was already done


TOKENIZER_DIR = f"{PRETRAINED_DIR}/tokenizer"


# --- stage 1: task and tokenizer ---------------------------------------------------------------


def in_study(task: TaskConfig, out_dir: Path) -> TaskConfig:
    """Return ``task`` with a relative ``data_dir`` joined to the study folder (where the runs'
    child processes find it)."""
    if task.data_dir is None or Path(task.data_dir).expanduser().is_absolute():
        return task
    return task.model_copy(update={"data_dir": str(out_dir / task.data_dir)})


def _load_tasks(specs: list[tuple[RunSpec, Path]], out_dir: Path) -> str:
    """Build each distinct task of the runs once (their dev, test and zero-shot sets are checked
    before any run starts); return their sizes as text."""
    from scaling_repro.data.tasks import load_task

    described = []
    tasks: dict[str, tuple[TaskConfig, bool]] = {}
    for spec, _ in specs:
        key = spec.task.model_copy(update={"train_examples": None, "seed": 0}).model_dump_json()
        zero_shot = tasks.get(key, (spec.task, False))[1] or spec.eval.zero_shot
        tasks[key] = (spec.task, zero_shot)
    for task_cfg, zero_shot in tasks.values():
        task = load_task(in_study(task_cfg, out_dir), zero_shot=zero_shot)
        sizes = f"{len(task.dev)} dev, {' + '.join(str(len(v)) for v in task.test.values())} test"
        if task.zero_shot:
            sizes += f", {len(task.zero_shot)} zero-shot sets"
        described.append(f"task {task_cfg.name} ({sizes})")
    return "; ".join(described)


def prepare_data(plan: StudyPlan, specs: list[tuple[RunSpec, Path]], out_dir: Path) -> StageResult:
    """Write the plan's stand-in corpus if it has one and is missing, build each finetuning
    task once (checks it) and, for a study that pretrains, train the shared tokenizer into
    ``out_dir/pretrained/tokenizer`` if missing; return the StageResult."""
    started = time.perf_counter()
    stand_in = ""
    if plan.stand_in_corpus is not None:
        from scaling_repro.reproduce.stand_ins import write_stand_in_corpus

        if write_stand_in_corpus(out_dir / plan.stand_in_corpus):
            stand_in = f"stand-in corpus -> {plan.stand_in_corpus}; "
    tasks = stand_in + _load_tasks(specs, out_dir)
    if plan.pretrain_recipe is None:
        return StageResult("data", time.perf_counter() - started, tasks, bool(stand_in))
    return _prepare_tokenizer(plan, out_dir, tasks, started)


def _prepare_tokenizer(plan: StudyPlan, out_dir: Path, tasks: str, started: float) -> StageResult:
    """Train the tokenizer of the models the study pretrains, unless it is there."""
    from scaling_repro.pretrain.corpus import CORPUS_SOURCES, get_tokenizer
    from scaling_repro.pretrain.recipe import load_pretrain_recipe

    assert plan.pretrain_recipe is not None
    recipe = load_pretrain_recipe(plan.pretrain_recipe, pretrain_overrides(tokenizer=False))
    recipe = recipe.model_copy(update={"output_dir": str(out_dir / recipe.output_dir)})
    tokenizer_dir = out_dir / TOKENIZER_DIR
    if (tokenizer_dir / "tokenizer.json").is_file():
        check_settings(tokenizer_dir, tokenizer_settings(recipe), "the tokenizer")
        return StageResult(
            "data", time.perf_counter() - started, f"{tasks}; tokenizer {TOKENIZER_DIR} already trained", False
        )
    if recipe.tokenizer.path:
        raise RecipeError(f"{plan.pretrain_recipe}: tokenizer.path must be unset: the study trains its own tokenizer")
    documents = CORPUS_SOURCES[recipe.corpus.source](recipe.corpus, "train")
    tokenizer = get_tokenizer(recipe, documents)  # trains and saves OUT/pretrained/tokenizer
    record_settings(tokenizer_dir, tokenizer_settings(recipe))
    summary = (
        f"{tasks}; {len(documents):,} pretraining documents; "
        f"{recipe.tokenizer.kind} tokenizer of {len(tokenizer)} entries -> {TOKENIZER_DIR}"
    )
    return StageResult("data", time.perf_counter() - started, summary)


# --- stage 2: pretraining ----------------------------------------------------------------------


def is_pretrained(plan_model: BaseModelPlan, out_dir: Path) -> bool:
    """Return whether the model's final checkpoint has been exported into ``out_dir/pretrained``."""
    final = out_dir / PRETRAINED_DIR / plan_model.name / plan_model.revisions[-1]
    return (final / META_FILE).is_file()


def _model_overrides(plan_model: BaseModelPlan) -> list[str]:
    """The pretraining recipe overrides that make one model of the plan (budget, checkpoints)."""
    checkpoints = ",".join(str(t) for t in plan_model.checkpoint_tokens)
    return [
        f"models=[{plan_model.name}]",
        f"token_budget={plan_model.token_budget}",
        f"checkpoint_tokens=[{checkpoints}]",
        *pretrain_overrides(),
    ]


def _model_settings(plan: StudyPlan, plan_model: BaseModelPlan) -> dict[str, Any]:
    """The settings one model of the plan is pretrained with (:func:`provenance.model_settings`)."""
    from scaling_repro.pretrain.recipe import load_pretrain_recipe

    return model_settings(load_pretrain_recipe(plan.pretrain_recipe, _model_overrides(plan_model)))


def _pretrain_cost(plan_model: BaseModelPlan) -> float:
    """Relative CPU cost: matmul parameters x tokens (only the order matters)."""
    from scaling_repro.models.configs import get_architecture

    arch = get_architecture(plan_model.name)
    d = arch.model_dim
    per_layer = 2 * d * arch.heads * arch.head_dim + 2 * d * arch.head_dim * arch.kv_heads + 3 * d * arch.ffn_dim
    return (arch.layers * per_layer + 2 * arch.listing_vocab_size * d) * plan_model.token_budget


def _tokens_seen(model_name: str, out_dir: Path) -> int:
    """Tokens the model's pretraining has logged so far (0 before its first log line)."""
    path = out_dir / PRETRAINED_DIR / model_name / "train" / "train_log.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if "tokens_seen" in row:
            return int(row["tokens_seen"])
    return 0


def pretrain_models(plan: StudyPlan, out_dir: Path, jobs: int, progress: bool = True) -> StageResult:
    """Pretrain every model of the plan that is not done, ``jobs`` at once (largest first),
    each as ``scaling-repro pretrain`` in a one-thread subprocess in ``out_dir`` logging to
    pretrained/<m>.log; return the StageResult."""
    started = time.perf_counter()
    if not plan.models:
        return StageResult("pretrain", 0.0, "no base model to pretrain (the plan downloads its base models)", False)
    for plan_model in plan.models:
        if is_pretrained(plan_model, out_dir):
            check_settings(
                out_dir / PRETRAINED_DIR / plan_model.name,
                _model_settings(plan, plan_model),
                f"base model {plan_model.name}",
            )
    todo = sorted((m for m in plan.models if not is_pretrained(m, out_dir)), key=_pretrain_cost, reverse=True)
    if not todo:
        names = ", ".join(f"{m.name} ({m.token_budget:,} tokens)" for m in plan.models)
        return StageResult("pretrain", time.perf_counter() - started, f"{names}: already pretrained", False)
    total = sum(m.token_budget for m in todo)
    bar = tqdm(total=total, desc="pretrain", unit="tok", unit_scale=True, disable=None if progress else True)
    done = threading.Event()

    def poll() -> None:
        while not done.wait(1.0):
            bar.n = min(total, sum(_tokens_seen(m.name, out_dir) for m in todo))
            bar.refresh()

    poller = threading.Thread(target=poll, name="pretrain-progress", daemon=True)
    poller.start()
    try:
        with ThreadPoolExecutor(max(1, min(jobs, len(todo))), thread_name_prefix="pretrain") as pool:
            seconds = list(pool.map(lambda m: _pretrain_one(plan, m, out_dir), todo))
    finally:
        done.set()
        poller.join()
        bar.n = total
        bar.close()
    each = ", ".join(f"{m.name} {m.token_budget / 1e6:g}M tokens {s:.0f}s" for m, s in zip(todo, seconds))
    return StageResult("pretrain", time.perf_counter() - started, f"{each} ({jobs} at once)")


def _pretrain_one(plan: StudyPlan, plan_model: BaseModelPlan, out_dir: Path) -> float:
    """Run one model's pretraining subprocess in ``out_dir``; return its seconds or raise UserError."""
    started = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "scaling_repro",
        "pretrain",
        str(plan.pretrain_recipe),
        *_model_overrides(plan_model),
        "train.threads=1",
    ]
    log_path = out_dir / PRETRAINED_DIR / f"{plan_model.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(f"# {' '.join(command)}\n")
        handle.flush()
        code = subprocess.run(
            command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=out_dir, check=False
        ).returncode
    if code != 0 or not is_pretrained(plan_model, out_dir):
        from scaling_repro.launch.runners import last_line

        raise UserError(
            f"pretraining {plan_model.name} failed (exit status {code}): {last_line(log_path)} (log: {log_path})"
        )
    record_settings(out_dir / PRETRAINED_DIR / plan_model.name, _model_settings(plan, plan_model))
    return time.perf_counter() - started
