"""The stages of a reproduction that produce runs: data and tokenizer, pretraining, finetuning.

Each stage skips what is already done (a second invocation of a finished study does no work)
and returns a :class:`StageResult` with its one-line summary. All paths are relative to the
study's output directory, which is the working directory while a study runs.
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

from scaling_repro.config.recipe import RunSpec
from scaling_repro.config.study_plan import PRETRAINED_DIR, BaseModelPlan, StudyPlan
from scaling_repro.errors import RecipeError, UserError
from scaling_repro.models.pretrain_tokens import META_FILE
from scaling_repro.reproduce.provenance import check_settings, model_settings, record_settings, tokenizer_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageResult:
    """What one stage did: its name, wall seconds and a one-line summary."""

    name: str
    seconds: float
    summary: str
    work_done: bool = True  # False when everything was already done


TOKENIZER_DIR = f"{PRETRAINED_DIR}/tokenizer"


def pretrain_overrides(tokenizer: bool = True) -> list[str]:
    """Overrides that put the pretraining recipe's outputs in the study's ``pretrained/`` and
    (with ``tokenizer``) make every model use the tokenizer the data stage trained there."""
    return [f"output_dir={PRETRAINED_DIR}", *([f"tokenizer.path={TOKENIZER_DIR}"] if tokenizer else [])]


def load_finetune_specs(plan: StudyPlan) -> list[tuple[RunSpec, Path]]:
    """Return every finetuning run of the plan with its recipe file, checked against the plan:
    each base model revision must be one the plan pretrains, the task's ``params`` must equal
    the pretraining corpus's (so no finetuning or test sentence occurs in pretraining), and no
    run may appear twice."""
    from scaling_repro.config.sweep import load_runs
    from scaling_repro.pretrain.recipe import load_pretrain_recipe

    corpus_params = load_pretrain_recipe(plan.pretrain_recipe, pretrain_overrides()).corpus.params
    produced = {(f"{PRETRAINED_DIR}/{m.name}", rev) for m in plan.models for rev in m.revisions}
    specs: list[tuple[RunSpec, Path]] = []
    seen: dict[Path, Path] = {}
    for recipe in plan.finetune:
        for spec in load_runs(recipe).runs:
            where = f"{recipe}: run {spec.index}"
            if (spec.model.path, spec.model.revision) not in produced:
                raise RecipeError(
                    f"{where}: model {spec.model.path}@{spec.model.revision} is not pretrained by the study "
                    f"plan; it produces {sorted(f'{p}@{r}' for p, r in produced)}"
                )
            if spec.task.params != corpus_params:
                raise RecipeError(
                    f"{where}: task.params {spec.task.params} differ from the pretraining corpus.params "
                    f"{corpus_params}; they must match so that pretraining holds no finetuning or test sentence"
                )
            if spec.run_dir in seen:
                raise RecipeError(f"{where}: the same run ({spec.run_dir}) is also in {seen[spec.run_dir]}")
            seen[spec.run_dir] = recipe
            specs.append((spec, recipe))
    return specs


# --- stage 1: task and tokenizer ---------------------------------------------------------------


def prepare_data(plan: StudyPlan, specs: list[tuple[RunSpec, Path]]) -> StageResult:
    """Build the finetuning task once (checks it) and train the shared tokenizer if missing."""
    from scaling_repro.data.tasks import load_task
    from scaling_repro.pretrain.corpus import CORPUS_SOURCES, get_tokenizer
    from scaling_repro.pretrain.recipe import load_pretrain_recipe

    started = time.perf_counter()
    task_cfg = specs[0][0].task
    task = load_task(task_cfg)
    sizes = f"{len(task.dev)} dev, {' + '.join(str(len(v)) for v in task.test.values())} test"
    recipe = load_pretrain_recipe(plan.pretrain_recipe, pretrain_overrides(tokenizer=False))
    if (Path(TOKENIZER_DIR) / "tokenizer.json").is_file():
        check_settings(TOKENIZER_DIR, tokenizer_settings(recipe), "the tokenizer")
        return StageResult(
            "data",
            time.perf_counter() - started,
            f"task {task_cfg.name} ({sizes}); tokenizer {TOKENIZER_DIR} already trained",
            False,
        )
    if recipe.tokenizer.path:
        raise RecipeError(f"{plan.pretrain_recipe}: tokenizer.path must be unset: the study trains its own tokenizer")
    documents = CORPUS_SOURCES[recipe.corpus.source](recipe.corpus, "train")
    tokenizer = get_tokenizer(recipe, documents)  # trains and saves OUT/pretrained/tokenizer
    record_settings(TOKENIZER_DIR, tokenizer_settings(recipe))
    summary = (
        f"task {task_cfg.name} ({sizes}); {len(documents):,} pretraining documents; "
        f"{recipe.tokenizer.kind} tokenizer of {len(tokenizer)} entries -> {TOKENIZER_DIR}"
    )
    return StageResult("data", time.perf_counter() - started, summary)


# --- stage 2: pretraining ----------------------------------------------------------------------


def is_pretrained(plan_model: BaseModelPlan) -> bool:
    """True when the model's final checkpoint has been exported."""
    final = Path(PRETRAINED_DIR) / plan_model.name / plan_model.revisions[-1]
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


def _tokens_seen(model_name: str) -> int:
    """Tokens the model's pretraining has logged so far (0 before its first log line)."""
    path = Path(PRETRAINED_DIR) / model_name / "train" / "train_log.jsonl"
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


def pretrain_models(plan: StudyPlan, jobs: int, progress: bool = True) -> StageResult:
    """Pretrain every model of the plan that is not done, ``jobs`` at once (largest first),
    each as ``scaling-repro pretrain`` in a one-thread subprocess logging to pretrained/<m>.log."""
    started = time.perf_counter()
    for plan_model in filter(is_pretrained, plan.models):
        check_settings(
            Path(PRETRAINED_DIR) / plan_model.name, _model_settings(plan, plan_model), f"base model {plan_model.name}"
        )
    todo = sorted((m for m in plan.models if not is_pretrained(m)), key=_pretrain_cost, reverse=True)
    if not todo:
        names = ", ".join(f"{m.name} ({m.token_budget:,} tokens)" for m in plan.models)
        return StageResult("pretrain", time.perf_counter() - started, f"{names}: already pretrained", False)
    total = sum(m.token_budget for m in todo)
    bar = tqdm(total=total, desc="pretrain", unit="tok", unit_scale=True, disable=None if progress else True)
    done = threading.Event()

    def poll() -> None:
        while not done.wait(1.0):
            bar.n = min(total, sum(_tokens_seen(m.name) for m in todo))
            bar.refresh()

    poller = threading.Thread(target=poll, name="pretrain-progress", daemon=True)
    poller.start()
    try:
        with ThreadPoolExecutor(max(1, min(jobs, len(todo))), thread_name_prefix="pretrain") as pool:
            seconds = list(pool.map(lambda m: _pretrain_one(plan, m), todo))
    finally:
        done.set()
        poller.join()
        bar.n = total
        bar.close()
    each = ", ".join(f"{m.name} {m.token_budget / 1e6:g}M tokens {s:.0f}s" for m, s in zip(todo, seconds))
    return StageResult("pretrain", time.perf_counter() - started, f"{each} ({jobs} at once)")


def _pretrain_one(plan: StudyPlan, plan_model: BaseModelPlan) -> float:
    """Run one model's pretraining subprocess; return its seconds or raise UserError."""
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
    log_path = Path(PRETRAINED_DIR) / f"{plan_model.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(f"# {' '.join(command)}\n")
        handle.flush()
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env, check=False).returncode
    if code != 0 or not is_pretrained(plan_model):
        from scaling_repro.launch.runners import last_line

        raise UserError(
            f"pretraining {plan_model.name} failed (exit status {code}): {last_line(log_path)} "
            f"(log: {log_path.resolve()})"
        )
    record_settings(Path(PRETRAINED_DIR) / plan_model.name, _model_settings(plan, plan_model))
    return time.perf_counter() - started


# --- stage 3: finetuning -----------------------------------------------------------------------


@dataclass(frozen=True)
class _TargetOf:
    """Each spec's RunTarget (its recipe file), by run directory."""

    targets: dict[Path, Any]

    def __call__(self, spec: RunSpec):
        return self.targets[spec.run_dir]


def finetune_runs(specs: list[tuple[RunSpec, Path]], jobs: int, progress: bool = True) -> StageResult:
    """Run every finetuning run that is not done, ``jobs`` at once in one-thread child processes,
    most expensive first (so the last runs to finish are short); raise UserError when any failed."""
    from scaling_repro.launch.execute import SweepOptions, format_summary
    from scaling_repro.launch.local import cpu_runners, run_specs
    from scaling_repro.launch.order import estimate_cost
    from scaling_repro.launch.runners import RunTarget

    started = time.perf_counter()
    ordered = sorted(specs, key=lambda item: -estimate_cost(item[0]))
    target_of = _TargetOf({spec.run_dir: RunTarget(recipe.resolve()) for spec, recipe in ordered})
    options = SweepOptions(retry_failed_before=time.time())  # a rerun retries earlier failures
    launch_log = logging.getLogger("scaling_repro.launch")
    level = launch_log.level
    launch_log.setLevel(logging.WARNING)  # the progress bar, not a line per run start / finish
    try:
        run_list = [spec for spec, _ in ordered]
        outcomes = run_specs(
            run_list, cpu_runners(target_of, jobs, specs=run_list), options, owner="reproduce", progress=progress
        )
    finally:
        launch_log.setLevel(level)
    seconds = time.perf_counter() - started
    counts = {
        kind: sum(o.kind == kind for o in outcomes) for kind in ("ok", "skipped", "failed", "skipped_failed", "busy")
    }
    failed = counts["failed"] + counts["skipped_failed"]
    if failed:
        raise UserError(
            f"{failed} finetuning run(s) failed; the study stops before fitting (rerun to retry after "
            f"fixing the cause, or delete their result.json).\n" + format_summary(outcomes, "finetune")
        )
    if counts["busy"]:
        raise UserError(f"{counts['busy']} finetuning run(s) are being run by another process; rerun when it is done")
    summary = f"{counts['ok']} runs trained, {counts['skipped']} already done ({jobs} at once)"
    return StageResult("finetune", seconds, summary, counts["ok"] > 0)
