"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse
import math
import textwrap
from collections.abc import Callable

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


def finite_float(allowed: str, above: float = 0.0, below: float | None = None) -> Callable[[str], float]:
    """Return an argparse ``type=`` accepting a finite number greater than ``above`` and, with
    ``below``, less than it; anything else (nan, inf, out of range, not a number) exits with
    status 2 and one line naming the option, the value and ``allowed``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > above and (below is None or value < below)):
            raise argparse.ArgumentTypeError(f"got {text!r}; allowed: {allowed}")
        return value

    parse.__name__ = "number"
    return parse


positive_seconds = finite_float("a finite number of seconds > 0, e.g. 900")
positive_number = finite_float("a finite number > 0")
coverage_level = finite_float("a number between 0 and 1 (exclusive), e.g. 0.9", 0.0, 1.0)
