"""An output folder (``--out``, a recipe's ``output_dir``) that names an existing file is one
line and exit status 2, before any work, for every command that writes into a folder."""

from __future__ import annotations

import pytest

from scaling_repro.cli import main
from tests.helpers.launch_fakes import write_recipe
from tests.helpers.paths import RECIPES

ALLOWED = "allowed: a folder (new or existing)"


def commands(tmp_path, out):
    recipe = write_recipe(tmp_path, (10,))
    results = tmp_path / "results"
    results.mkdir()
    return {
        "reproduce": (["reproduce", "tiny", "--quick", "--out", str(out)], "--out"),
        "sweep": (["sweep", str(recipe), f"output_dir={out}"], "output_dir"),
        "run": (["run", str(recipe), "--index", "0", f"output_dir={out}"], "output_dir"),
        "report": (["report", "--results", str(results), "--out", str(out)], "--out"),
        "figure": (["figure", "2", "--results", str(results), "--out", str(out)], "--out"),
        "table": (["table", "2", "--results", str(results), "--out", str(out)], "--out"),
        "pretrain": (["pretrain", str(RECIPES / "tiny" / "pretrain.yaml"), f"output_dir={out}"], "output_dir"),
    }


@pytest.mark.parametrize("command", ["reproduce", "sweep", "run", "report", "figure", "table", "pretrain"])
def test_an_output_folder_naming_a_file_is_one_line(command, tmp_path, fake_runs, capsys):
    out = tmp_path / "taken"
    out.write_text("a file\n")
    argv, label = commands(tmp_path, out)[command]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"error: {label} {out} is a file; {ALLOWED}"]
    assert out.read_text() == "a file\n"


def test_a_file_above_the_output_folder_is_named(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file\n")
    out = tmp_path / "taken" / "study"
    assert main(["reproduce", "tiny", "--quick", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: --out {out}: {tmp_path / 'taken'} is a file; {ALLOWED}"]
