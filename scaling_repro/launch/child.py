"""``python -m scaling_repro.launch.child MODULE:FUNCTION RECIPE [KEY=VALUE ...] --run-id ID``.

The testing hook's child process: rebuilds one RunSpec of a recipe (like ``scaling-repro run``)
and calls ``MODULE:FUNCTION(spec)`` instead of the pipeline. Backends that start runs as
subprocesses (``local --gpus``, torchrun, Slurm with several GPUs) use it when a sweep is given
``--runner``; nothing else does.
"""

from __future__ import annotations

import argparse
import sys

from scaling_repro.errors import UserError
from scaling_repro.launch.runners import resolve_function
from scaling_repro.config.sweep import load_runs, select_run


def main(argv: list[str] | None = None) -> int:
    """Run one spec through the named function; return the exit status (2 for user errors)."""
    parser = argparse.ArgumentParser(prog="python -m scaling_repro.launch.child")
    parser.add_argument("runner", metavar="MODULE:FUNCTION")
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--run-id", required=True)
    args = parser.parse_args(argv)
    try:
        spec = select_run(load_runs(args.recipe, args.overrides), run_id=args.run_id)
        function = resolve_function(args.runner)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    function(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
