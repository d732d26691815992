"""The ``scaling-repro`` command line: subcommands only, each defined in :mod:`scaling_repro.commands`.

Every subcommand module has ``register(subparsers)`` that adds its parser (with help and an
example) and sets ``func`` to a handler taking the parsed arguments and returning an exit code.
Modules import heavy libraries (torch) inside their handlers, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from scaling_repro.errors import UserError, filesystem_error
from scaling_repro.logs import configure_logging

COMMAND_MODULES = (
    "scaling_repro.commands.validate",
    "scaling_repro.commands.run",
    "scaling_repro.commands.sweep",
    "scaling_repro.commands.status",
    "scaling_repro.commands.migrate",
    "scaling_repro.commands.evaluate",
    "scaling_repro.commands.data",
    "scaling_repro.commands.models",
    "scaling_repro.commands.pretrain",
    "scaling_repro.commands.fit",
    "scaling_repro.commands.figure",
    "scaling_repro.commands.table",
    "scaling_repro.commands.report",
    "scaling_repro.commands.findings",
    "scaling_repro.commands.advise",
    "scaling_repro.commands.reproduce",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="scaling-repro",
        description=(
            "Reproduce 'When Scaling Meets LLM Finetuning' (Zhang et al., ICLR 2024): run recipe "
            "sweeps of FMT / Prompt / LoRA finetuning, fit the paper's scaling laws, draw its "
            "figures. `scaling-repro COMMAND --help` explains each command with an example."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the subcommand and return its exit code: 2 for user errors and for
    the file system's refusals (disk full, read-only, no permission: one line naming the path,
    the traceback with ``-v``), 130 for Ctrl-C."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may come after options too (`run r.yaml --index 3 train.max_steps=5`).
    stray = [a for a in extra if "=" not in a or a.startswith("-")]
    if extra and (stray or not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        message = filesystem_error(err)
        if message is None:
            raise
        if args.verbose:
            traceback.print_exc()
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
