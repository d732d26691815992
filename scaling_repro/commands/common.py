"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse
import textwrap

OVERRIDES_HELP = (
    "overrides as key.path=value (value parsed as YAML, typed by the recipe schema), e.g. "
    "train.max_steps=100 method.kind=lora; a path that is a sweep axis pins that axis"
)


def add_command(subparsers, name: str, summary: str, details: str, example: str) -> argparse.ArgumentParser:
    """Return a new subcommand parser whose help shows ``details`` and an example."""
    epilog = "example:\n" + textwrap.indent(textwrap.dedent(example).strip(), "  ")
    return subparsers.add_parser(
        name,
        help=summary,
        description=f"{summary}\n\n{textwrap.dedent(details).strip()}",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_recipe_args(parser: argparse.ArgumentParser) -> None:
    """Add the positional RECIPE and its trailing key=value overrides."""
    parser.add_argument("recipe", metavar="RECIPE", help="recipe YAML file")
    parser.add_argument("overrides", metavar="KEY=VALUE", nargs="*", help=OVERRIDES_HELP)
