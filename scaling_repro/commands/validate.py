"""``scaling-repro validate``: check a recipe and show its expanded sweep."""

from __future__ import annotations

import argparse
from typing import Any

from scaling_repro.commands.common import add_command, add_recipe_args


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "validate",
        "check a recipe and print its expanded runs",
        """
        Loads the recipe (with `extends:` and overrides), expands its sweep and validates every
        run. Prints the number of runs and a table: index, run id, held-out mark and the
        sweep-axis values. Exit 0 when valid, 2 with a message naming the field otherwise.
        """,
        """
        scaling-repro validate recipes/tiny/fmt.yaml
        scaling-repro validate recipes/tiny/fmt.yaml train.max_steps=10 method.kind=lora
        """,
    )
    add_recipe_args(parser)
    parser.add_argument("--limit", type=int, default=20, help="rows of the table to print (default 20)")
    parser.set_defaults(func=run)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        text = " ".join(f"{k}={v}" for k, v in value.items() if v not in (None, [], {}))
    else:
        text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def run(args: argparse.Namespace) -> int:
    from scaling_repro.sweep import load_runs

    sweep = load_runs(args.recipe, args.overrides)
    axes = [*sweep.sweep.grid, *(p for g in sweep.sweep.zip for p in g)]
    print(f"{sweep.source}: {len(sweep.runs)} run(s), output {sweep.runs[0].output_dir}/{sweep.runs[0].name}/")
    header = ["#", "run_id", "held_out", *axes]
    rows = []
    for run in sweep.runs[: args.limit]:
        dumped = run.model_dump(mode="json")
        values = []
        for axis in axes:
            node: Any = dumped
            for part in axis.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            values.append(_short(node))
        rows.append([str(run.index), run.run_id, "yes" if run.held_out else "", *values])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if len(sweep.runs) > args.limit:
        print(f"... {len(sweep.runs) - args.limit} more (--limit)")
    return 0
