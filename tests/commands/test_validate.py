"""`scaling-repro validate`: exit 0 on good recipes, exit 2 with the field named otherwise."""

import subprocess
import sys

import pytest

from scaling_repro.cli import main
from tests.helpers.paths import REPO


def test_tiny_recipe_validates(capsys):
    assert main(["validate", str(REPO / "recipes/tiny/data_scaling.yaml")]) == 0
    assert "run(s)" in capsys.readouterr().out


def write(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return str(path)


GOOD = "name: t\ntask: {name: synthetic_mt}\nmodel: {name: tiny-s}\nmethod: {kind: full}\n"


@pytest.mark.parametrize(
    "text, overrides, expected",
    [
        (GOOD + "train: {bogus: 1}\n", [], "train.bogus: unknown field"),
        (GOOD + "train: {max_steps: lots}\n", [], "train.max_steps: got 'lots'"),
        (GOOD + "train: {optimizer: sgd}\n", [], "allowed: 'adafactor' or 'adamw'"),
        (GOOD, ["method.kind=prompt", "method.rank=4"], "method.rank: not a field of method kind 'prompt'"),
        (GOOD, ["train.max_steps"], "expected key.path=value"),
        (GOOD, ["train.eval_every=-1"], "train.eval_every: got -1"),
        ("name: t\ntask: [unclosed\n", [], "YAML syntax error"),
        (GOOD + "extends: missing.yaml\n", [], "missing.yaml: recipe file not found"),
    ],
)
def test_bad_recipe_exits_2_naming_the_field(tmp_path, capsys, text, overrides, expected):
    assert main(["validate", write(tmp_path, text), *overrides]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_missing_recipe_file_exits_2(capsys, tmp_path):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "recipe file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_module_entry_point_and_help_work():
    out = subprocess.run(
        [sys.executable, "-m", "scaling_repro", "validate", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "example:" in out
