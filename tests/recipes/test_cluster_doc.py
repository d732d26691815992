"""docs/cluster.md and the recipe READMEs only show commands and files that exist."""

import argparse
import re
import shlex

import pytest

from scaling_repro.cli import build_parser
from tests.helpers.paths import REPO

DOCS = [REPO / "docs" / "cluster.md", REPO / "recipes" / "paper" / "README.md", REPO / "recipes" / "open" / "README.md"]


def command_lines(text: str) -> list[str]:
    """Every `scaling-repro ...` command, inline or in an indented block (continuations joined)."""
    text = text.replace("\\\n", " ")
    found = re.findall(r"`(scaling-repro [^`]+)`", text)
    for line in text.splitlines():
        if line.startswith("    ") and "scaling-repro " in line:
            found.append("scaling-repro " + line.split("scaling-repro ", 1)[1])
    return found


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_docs_show_scaling_repro_commands():
    assert len(command_lines((REPO / "docs" / "cluster.md").read_text(encoding="utf-8"))) >= 10


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_documented_command_and_flag_exists(doc):
    commands = subparsers()
    for line in command_lines(doc.read_text(encoding="utf-8")):
        words = shlex.split(line.split("#")[0])
        assert words[1] in commands, line
        if words[1] in ("validate", "sweep", "run", "status", "evaluate", "pretrain"):
            flags = {option for action in commands[words[1]]._actions for option in action.option_strings}
            used = {w.split("=")[0] for w in words[2:] if w.startswith("--")}
            assert used <= flags, f"{line}: unknown {used - flags}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_documented_recipe_paths_exist(doc):
    for path in set(re.findall(r"recipes/[\w/.-]+\.yaml", doc.read_text(encoding="utf-8"))):
        assert (REPO / path).is_file(), path
