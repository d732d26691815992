"""The stages of a reproduction that produce runs: data and tokenizer, pretraining, finetuning.

Each stage skips what is already done (a second invocation of a finished study does no work)
and returns a :class:`StageResult` with its one-line summary. The plan and its recipes name
paths relative to the study's output directory ``out_dir`` (``pretrained/``, ``runs/``): the
stages join them to it, and run the pretraining and finetuning processes in it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from scaling_repro.config.recipe import RunSpec
from scaling_repro.config.study_plan import PRETRAINED_DIR, RUNS_DIR, BaseModelPlan, StudyPlan
from scaling_repro.errors import RecipeError, UserError
from scaling_repro.launch.runners import RunTarget
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


def prepare_data(plan: StudyPlan, specs: list[tuple[RunSpec, Path]], out_dir: Path) -> StageResult:
    """Build the finetuning task once (checks it) and train the shared tokenizer into
    ``out_dir/pretrained/tokenizer`` if missing; return the StageResult."""
    from scaling_repro.data.tasks import load_task
    from scaling_repro.pretrain.corpus import CORPUS_SOURCES, get_tokenizer
    from scaling_repro.pretrain.recipe import load_pretrain_recipe

    started = time.perf_counter()
    task_cfg = specs[0][0].task
    task = load_task(task_cfg)
    sizes = f"{len(task.dev)} dev, {' + '.join(str(len(v)) for v in task.test.values())} test"
    recipe = load_pretrain_recipe(plan.pretrain_recipe, pretrain_overrides(tokenizer=False))
    recipe = recipe.model_copy(update={"output_dir": str(out_dir / recipe.output_dir)})
    tokenizer_dir = out_dir / TOKENIZER_DIR
    if (tokenizer_dir / "tokenizer.json").is_file():
        check_settings(tokenizer_dir, tokenizer_settings(recipe), "the tokenizer")
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
    record_settings(tokenizer_dir, tokenizer_settings(recipe))
    summary = (
        f"task {task_cfg.name} ({sizes}); {len(documents):,} pretraining documents; "
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


# --- stage 3: finetuning -----------------------------------------------------------------------


@dataclass(frozen=True)
class StudyRecipe(RunTarget):
    """A finetuning recipe of the study, whose runs child processes run in the study folder.

    The launcher handles each spec with its run directory made absolute (``output_dir`` is no
    part of a run's id); the child runs it with the recipe's ``output_dir``, relative to the
    study folder like the model paths, so that its spec.yaml and result.json read as the recipe
    wrote them, as when ``python -m scaling_repro run`` rebuilds the spec from the recipe.
    """

    output_dir: str = RUNS_DIR

    def function(self) -> Callable[[RunSpec], Any]:
        """Return the callable that runs one launched spec with the recipe's ``output_dir``."""
        return functools.partial(_run_with_output_dir, self.output_dir, super().function())


def _run_with_output_dir(output_dir: str, run: Callable[[RunSpec], Any], spec: RunSpec) -> Any:
    """Return ``run(spec)`` with ``spec.output_dir`` set to ``output_dir``."""
    return run(spec.model_copy(update={"output_dir": output_dir}))


def _in_study(spec: RunSpec, out_dir: Path) -> RunSpec:
    """Return ``spec`` with its ``output_dir`` joined to the study folder (the same run id)."""
    return spec.model_copy(update={"output_dir": str(out_dir / spec.output_dir)})


@dataclass(frozen=True)
class _TargetOf:
    """Each spec's RunTarget (its recipe file), by run directory."""

    targets: dict[Path, RunTarget]

    def __call__(self, spec: RunSpec) -> RunTarget:
        return self.targets[spec.run_dir]


def finetune_runs(specs: list[tuple[RunSpec, Path]], out_dir: Path, jobs: int, progress: bool = True) -> StageResult:
    """Run every finetuning run that is not done, ``jobs`` at once in one-thread child processes
    in ``out_dir``, most expensive first (so the last runs to finish are short); return the
    StageResult, or raise UserError when any failed."""
    from scaling_repro.launch.execute import SweepOptions, format_summary
    from scaling_repro.launch.local import cpu_runners, run_specs
    from scaling_repro.launch.order import estimate_cost

    started = time.perf_counter()
    ordered = sorted(specs, key=lambda item: -estimate_cost(item[0]))
    run_list = [_in_study(spec, out_dir) for spec, _ in ordered]
    target_of = _TargetOf(
        {
            run.run_dir: StudyRecipe(recipe.resolve(), output_dir=spec.output_dir)
            for run, (spec, recipe) in zip(run_list, ordered)
        }
    )
    options = SweepOptions(retry_failed_before=time.time())  # a rerun retries earlier failures
    runners = cpu_runners(target_of, jobs, specs=run_list, cwd=out_dir)
    outcomes = run_specs(run_list, runners, options, owner="reproduce", progress=progress)
    seconds = time.perf_counter() - started
    counts = {
        kind: sum(o.kind == kind for o in outcomes)
        for kind in ("ok", "skipped", "failed", "skipped_failed", "busy", "unreadable")
    }
    failed = counts["failed"] + counts["skipped_failed"]
    if failed:
        raise UserError(
            f"{failed} finetuning run(s) failed; the study stops before fitting (rerun to retry after "
            f"fixing the cause, or delete their result.json).\n" + format_summary(outcomes, "finetune")
        )
    if counts["busy"]:
        raise UserError(f"{counts['busy']} finetuning run(s) are being run by another process; rerun when it is done")
    if counts["unreadable"]:
        raise UserError(
            f"{counts['unreadable']} finetuning result(s) cannot be read by this user; the study stops before "
            "fitting without them (ask their owner to make them group-readable: docs/cluster.md, 'Shared folders').\n"
            + format_summary(outcomes, "finetune")
        )
    summary = f"{counts['ok']} runs trained, {counts['skipped']} already done ({jobs} at once)"
    return StageResult("finetune", seconds, summary, counts["ok"] > 0)
