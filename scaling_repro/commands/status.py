"""``scaling-repro status``: where a sweep stands."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

from scaling_repro.commands.common import OVERRIDES_HELP, add_command, positive_seconds
from scaling_repro.errors import UserError


def register(subparsers) -> None:
    from scaling_repro.launch.claims import DEFAULT_STALE_AFTER

    parser = add_command(
        subparsers,
        "status",
        "show a sweep's done / running / failed / pending runs and GPU-hours",
        """
        With a recipe (and the overrides the sweep was started with) every run is known:
        never-started runs count as pending, and the GPU-hours still needed are estimated
        from the finished runs' wall time x GPUs, scaled by each remaining run's estimated cost
        (see `scaling-repro sweep --help`). With a directory (a sweep's output directory, or
        one above it) only the run directories on disk are known, so runs that never started
        are missing and no estimate is given. Prints a table of running runs (host, pid, since
        when) and one of failures with their reasons. A damaged claim file (not a valid claim)
        is named in a warning: its run counts as running until --stale-after seconds after
        the file last changed, then the next sweep worker takes it over. A run whose
        result.json is damaged counts as pending and is listed: the next run of it keeps the
        file as result.damaged.json and finishes the run again from its checkpoints. A
        result.json this user cannot read (a teammate's, not group-readable) counts as "cannot
        read": listed with the fix, never rerun, moved or marked failed (docs/cluster.md).
        """,
        """
        scaling-repro status recipes/tiny/data_scaling.yaml
        scaling-repro status runs/tiny-data-scaling
        """,
    )
    parser.add_argument("target", metavar="SWEEP_DIR_OR_RECIPE", help="recipe YAML file or results directory")
    parser.add_argument("overrides", metavar="KEY=VALUE", nargs="*", help=OVERRIDES_HELP + " (recipe only)")
    parser.add_argument(
        "--stale-after",
        type=positive_seconds,
        default=DEFAULT_STALE_AFTER,
        metavar="SECONDS",
        help=f"a claim without heartbeat for this long counts as dead (default {DEFAULT_STALE_AFTER:.0f})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Reading a sweep builds a spec, a status and a record per run, none with reference cycles:
    # the cyclic garbage collector would only traverse them again and again as they pile up.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _report(args)
    finally:
        if enabled:
            gc.enable()


def _report(args: argparse.Namespace) -> int:
    from scaling_repro.config.sweep import load_runs
    from scaling_repro.launch import format_status, status_of_directory, status_of_specs

    path = Path(args.target)
    if path.is_dir():
        if args.overrides:
            raise UserError(f"{path} is a directory: KEY=VALUE overrides only apply to a recipe")
        status = status_of_directory(path, args.stale_after)
    elif path.is_file():
        sweep = load_runs(path, args.overrides)
        status = status_of_specs(sweep.runs, f"{sweep.runs[0].run_dir.parent} (recipe {path})", args.stale_after)
    else:
        raise UserError(f"{path}: no such recipe file or results directory")
    print(format_status(status))
    return 0
