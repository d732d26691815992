"""``scaling-repro migrate``: rename run directories to the run id their spec has now."""

from __future__ import annotations

import argparse
from pathlib import Path

from scaling_repro.commands.common import add_command
from scaling_repro.errors import UserError


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "migrate",
        "rename run directories made under an earlier run-id rule to their run id",
        """
        A run directory is named by its run id. Directories made while runtime settings
        (micro-batch, checkpoint cadence, threads, attention kernel, DeepSpeed config) still
        counted in the id carry the old id, and run, sweep and status do not see them. For
        every run directory at most three levels below DIR, this reads its spec (spec.json, else
        the one in result.json), computes the run id and, where the name differs, moves the
        directory beside itself to that name and writes the id into its spec.json and
        result.json. A directory whose new name is taken is left where it is, and named.
        Prints each move; exit 0. Run it while no sweep works in DIR: a moved directory is
        not where a running worker writes.
        """,
        """
        scaling-repro migrate runs
        scaling-repro migrate runs/tiny-data-scaling
        """,
    )
    parser.add_argument("root", metavar="DIR", help="a results directory (or a run directory)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_repro.results.migrate import migrate_tree

    root = Path(args.root)
    if not root.is_dir():
        raise UserError(f"{root}: no such results directory")
    migrations = migrate_tree(root)
    moved = [m for m in migrations if m.new is not None]
    for m in migrations:
        print(f"moved {m.old} -> {m.new}" if m.new is not None else f"left {m.old}: {m.note}")
    print(f"{root}: {len(moved)} run director{'y' if len(moved) == 1 else 'ies'} renamed to their run id", end="")
    print(f", {len(migrations) - len(moved)} left (see above)" if len(moved) < len(migrations) else "")
    return 0
