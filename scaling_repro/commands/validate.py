"""``scaling-repro validate``: check a recipe and show its expanded sweep."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaling_repro.commands.common import add_command, add_recipe_args, positive_number
from scaling_repro.errors import RecipeError, UserError
from scaling_repro.launch.cost import ASSUMED_MFU, H100_PEAK_FLOPS, CostAssumptions

if TYPE_CHECKING:
    from scaling_repro.config.recipe import RunSpec


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "validate",
        "check a recipe and print its expanded runs",
        """
        Loads the recipe (with `extends:` and overrides), expands its sweep and validates every
        run, its `task.params` against the task's options included (as `run` does). Prints
        the number of runs and a table: index, run id, held-out mark, the sweep-axis values and
        each run's estimated GPU-hours, then the total. Exit 0 when valid, 2 with a message
        naming the field otherwise.

        GPU-hours are estimated from the FLOPs the trainer counts for its MFU (6 N per token for
        FMT, 4 N for Prompt/LoRA, plus attention; tokens = examples processed x real tokens per
        example, `--tokens-per-example` or else the task's length cap, an upper bound; plus dev
        evaluations) at an assumed MFU of a GPU's dense bf16 peak (default 40% of an H100 SXM's
        989 TFLOP/s; pass the `mfu` of your finished runs). Decoding is not included; see
        scaling_repro/launch/cost.py. A pretraining recipe (`scaling-repro pretrain`) is
        recognized by its `models:` list and checked against its own schema; a study plan
        (`scaling-repro reproduce`) by its `pretrain_recipe:` and `finetune:` keys, and checked
        with every recipe it runs.

        With `--memory` each run's peak GPU memory per GPU is added, for training and for
        evaluation (test loss, decoding): traced on fake tensors without a GPU, once per
        distinct model, method and shape (see scaling_repro/launch/memory_trace.py).
        """,
        """
        scaling-repro validate recipes/paper/wmt14_en_de/model_size_lora.yaml
        scaling-repro validate recipes/paper/wmt14_en_de/model_size_lora.yaml model.name=paper-1b train.max_steps=1000
        scaling-repro validate recipes/paper/wmt14_en_de/model_size_fmt.yaml --mfu 0.5 --peak-tflops 312
        scaling-repro validate recipes/paper/wmt14_en_de/model_size_fmt.yaml --mfu 0.45 --tokens-per-example 66
        scaling-repro validate recipes/paper/mlsum/model_size_lora.yaml --memory
        scaling-repro validate recipes/paper/pretrain/en_de.yaml
        scaling-repro validate recipes/tiny/study.yaml
        """,
    )
    add_recipe_args(parser)
    parser.add_argument("--limit", type=int, default=20, help="rows of the table to print (default 20)")
    parser.add_argument(
        "--mfu",
        type=float,
        default=ASSUMED_MFU,
        metavar="FRACTION",
        help=f"model FLOPs utilization assumed for the GPU-hour estimate (default {ASSUMED_MFU})",
    )
    parser.add_argument(
        "--peak-tflops",
        type=positive_number,
        default=H100_PEAK_FLOPS / 1e12,
        metavar="TFLOPS",
        help=f"dense bf16 peak of one GPU (default {H100_PEAK_FLOPS / 1e12:g}, H100 SXM; A100: 312)",
    )
    parser.add_argument(
        "--tokens-per-example",
        type=positive_number,
        default=None,
        metavar="TOKENS",
        help="mean real tokens of a training example (e.g. tokens / examples from the token cache's log "
        "line); default: the task's length cap, an upper bound",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="also trace each run's peak GPU memory per GPU, training and evaluation, on fake tensors "
        "(scaling_repro/launch/memory_trace.py; ~15 s per distinct model/method/shape, cached)",
    )
    parser.set_defaults(func=run)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        text = " ".join(f"{k}={v}" for k, v in value.items() if v not in (None, [], {}))
    else:
        text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def run(args: argparse.Namespace) -> int:
    from scaling_repro.config.recipe_file import load_recipe_dict
    from scaling_repro.config.sweep import load_runs
    from scaling_repro.launch.cost import CostAssumptions, gpu_hours

    if not 0 < args.mfu <= 1 or args.peak_tflops <= 0:
        raise UserError(f"--mfu {args.mfu} --peak-tflops {args.peak_tflops}: need 0 < mfu <= 1 and a positive peak")
    if args.tokens_per_example is not None and args.tokens_per_example <= 0:
        raise UserError(f"--tokens-per-example {args.tokens_per_example}: must be positive")
    assumptions = CostAssumptions(
        mfu=args.mfu, peak_flops=args.peak_tflops * 1e12, tokens_per_example=args.tokens_per_example
    )
    data = load_recipe_dict(args.recipe)
    if is_study_plan(data):
        return _validate_study(args, assumptions)
    if is_pretrain_recipe(data):
        return _validate_pretrain(args, assumptions)
    sweep = load_runs(args.recipe, args.overrides)
    check_task_params(sweep.runs, sweep.source)
    axes = [*sweep.sweep.grid, *(p for g in sweep.sweep.zip for p in g)]
    hours = [gpu_hours(run, assumptions) for run in sweep.runs]
    print(f"{sweep.source}: {len(sweep.runs)} run(s), output {sweep.runs[0].output_dir}/{sweep.runs[0].name}/")
    memory = _memory_columns(sweep.runs[: args.limit]) if args.memory else None
    header = ["#", "run_id", "held_out", *axes, "gpu_h", *(["train_gb", "eval_gb"] if memory else [])]
    rows = []
    for run, run_hours in zip(sweep.runs[: args.limit], hours):
        dumped = run.model_dump(mode="json")
        values = []
        for axis in axes:
            node: Any = dumped
            for part in axis.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            values.append(_short(node))
        row = [str(run.index), run.run_id, "yes" if run.held_out else "", *values, _hours(run_hours)]
        rows.append(row + (memory[len(rows)] if memory else []))
    _print_table(header, rows)
    if len(sweep.runs) > args.limit:
        print(f"... {len(sweep.runs) - args.limit} more (--limit)")
    total = sum(hours)
    print(
        f"estimated GPU-hours: {_hours(total)} for {len(sweep.runs)} run(s) (mean {_hours(total / len(hours))}, "
        f"max {_hours(max(hours))}) at {assumptions.describe()}; training + dev evaluations, decoding not included; "
        + (
            f"{assumptions.tokens_per_example:g} real tokens per example"
            if assumptions.tokens_per_example
            else "tokens per example at the task's length cap (an upper bound: --tokens-per-example)"
        )
    )
    return 0


def _memory_columns(runs: Sequence[RunSpec]) -> list[list[str]]:
    """Return (train GB, eval GB) per GPU of each run, traced once per distinct shape; '-' for a
    model that is not a config name."""
    from scaling_repro.launch.memory_trace import run_memory

    columns = []
    for spec in runs:
        estimate = run_memory(spec)
        if estimate is None:
            columns.append(["-", "-"])
        else:
            train = "-" if estimate.train_gb is None else _gb(estimate.train_gb)
            columns.append([train, _gb(estimate.eval_gb)])
    return columns


def check_task_params(runs: Sequence[RunSpec], source: str | Path) -> None:
    """Check each run's ``task.params`` against its task's options, as ``run`` does before it
    loads data; raise ``RecipeError`` naming ``source``, the field, the bad value and what is allowed."""
    from scaling_repro.data.tasks import task_params

    distinct: dict[str, RunSpec] = {}
    for spec in runs:
        distinct.setdefault(json.dumps([spec.task.name, spec.task.params], sort_keys=True, default=repr), spec)
    for spec in distinct.values():
        try:
            task_params(spec.task)
        except UserError as err:
            context = f" (sweep run {spec.index})" if len(distinct) > 1 else ""
            raise RecipeError(f"{source}: {err}{context}") from None


def is_pretrain_recipe(data: dict[str, Any]) -> bool:
    """A pretraining recipe (``scaling-repro pretrain``) lists ``models``; a finetuning one has ``model``."""
    return "models" in data and "model" not in data and not is_study_plan(data)


def is_study_plan(data: dict[str, Any]) -> bool:
    """A study plan (``scaling-repro reproduce``) names its base models (a ``pretrain_recipe`` or
    ``hub_models``) and ``finetune`` recipes."""
    return ("pretrain_recipe" in data or "hub_models" in data) and "finetune" in data


def _validate_study(args: argparse.Namespace, assumptions: CostAssumptions) -> int:
    import dataclasses
    from collections import Counter

    from scaling_repro.launch.cost import gpu_hours, pretrain_gpu_hours
    from scaling_repro.reproduce import load_plan
    from scaling_repro.reproduce.stages import load_finetune_specs

    if args.overrides:
        raise UserError(f"{args.recipe} is a study plan; overrides ({' '.join(args.overrides)}) apply to recipes only")
    plan = load_plan(args.recipe)
    if plan.cost.tokens_per_example is not None and assumptions.tokens_per_example is None:
        assumptions = dataclasses.replace(assumptions, tokens_per_example=plan.cost.tokens_per_example)
    specs = load_finetune_specs(plan)
    counts = Counter(recipe for _, recipe in specs)
    for recipe in counts:
        check_task_params([spec for spec, r in specs if r == recipe], recipe)
    hours = {recipe: sum(gpu_hours(spec, assumptions) for spec, r in specs if r == recipe) for recipe in counts}
    pretrain_hours = [pretrain_gpu_hours(m.name, m.token_budget, assumptions) for m in plan.models]
    pretrain = sum(pretrain_hours)
    print(f"{args.recipe}: study plan {plan.name!r}: {len(plan.models)} base model(s), {len(specs)} finetuning run(s)")
    rows = [[f"pretrain {m.name}", ", ".join(m.revisions), _hours(h)] for m, h in zip(plan.models, pretrain_hours)]
    rows += [[recipe.name, f"{counts[recipe]} run(s)", _hours(hours[recipe])] for recipe in counts]
    _print_table(["part", "what", "gpu_h"], rows)
    print(
        f"estimated GPU-hours: {_hours(pretrain + sum(hours.values()))} at {assumptions.describe()} "
        f"(pretraining {_hours(pretrain)}); `scaling-repro reproduce ... --dry-run` prints the plan in full"
    )
    return 0


def _validate_pretrain(args: argparse.Namespace, assumptions: CostAssumptions) -> int:
    from scaling_repro.launch.cost import pretrain_gpu_hours
    from scaling_repro.pretrain.recipe import load_pretrain_recipe, revision_name

    recipe = load_pretrain_recipe(args.recipe, args.overrides)
    print(
        f"{args.recipe}: pretraining recipe, {len(recipe.models)} model(s) -> {recipe.output_dir}/<model>/"
        f"tokens-<N>/; {recipe.steps:,} steps of {recipe.tokens_per_step:,} tokens "
        f"(batch {recipe.batch_size} x seq_len {recipe.seq_len}), corpus {recipe.corpus.source}"
    )
    revisions = ", ".join(revision_name(t) for t in recipe.export_tokens)
    hours = [pretrain_gpu_hours(model, recipe.token_budget, assumptions) for model in recipe.models]
    _print_table(["model", "gpu_h"], [[m, _hours(h)] for m, h in zip(recipe.models, hours)])
    print(f"revisions of each model: {revisions}")
    print(
        f"estimated GPU-hours: {_hours(sum(hours))} at {assumptions.describe()} "
        "(6 N per token; dev evaluations not included)"
    )
    return 0


def _gb(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _hours(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
