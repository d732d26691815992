"""Recipe YAML that would hang, flood memory or hide a setting is refused in one line, fast."""

from __future__ import annotations

import time

import pytest

from scaling_repro.cli import main
from scaling_repro.config import recipe_file
from scaling_repro.config.errors import short_repr
from scaling_repro.config.recipe_file import load_recipe_dict
from scaling_repro.config.sweep import load_runs
from scaling_repro.errors import RecipeError

GOOD = "name: t\ntask: {name: synthetic_mt}\nmodel: {name: tiny-s}\nmethod: {kind: full}\n"


def validate_error(capsys, path) -> str:
    """Run `scaling-repro validate path`, check it exits 2, return its stderr."""
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ['  a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return GOOD + "description:\n" + "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_in_under_a_second_with_one_line(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    start = time.perf_counter()
    err = validate_error(capsys, path)
    assert time.perf_counter() - start < 1.0
    assert err.count("\n") == 1 and "aliases expand to more than" in err and "bomb.yaml" in err


def test_a_few_small_aliases_still_load(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD + "x: &steps {max_steps: 5}\ntrain: *steps\n")
    assert load_recipe_dict(path)["train"] == {"max_steps": 5}


def test_alias_inside_its_own_section_is_refused(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD + "description: &d [*d]\n")
    with pytest.raises(RecipeError, match="refers to the section that contains it"):
        load_recipe_dict(path)


def test_extends_diamond_of_17_files_reads_each_file_once(tmp_path, monkeypatch):
    for level in range(16):
        parent = f"l{level + 1}.yaml"
        (tmp_path / f"l{level}.yaml").write_text(f"extends: [{parent}, {parent}, {parent}]\n")
    (tmp_path / "l16.yaml").write_text(GOOD)
    reads = []
    real = recipe_file.read_yaml
    monkeypatch.setattr(recipe_file, "read_yaml", lambda path: reads.append(path.name) or real(path))
    start = time.perf_counter()
    runs = load_runs(tmp_path / "l0.yaml")
    assert time.perf_counter() - start < 1.0
    assert len(runs.runs) == 1
    assert sorted(reads) == sorted(f"l{level}.yaml" for level in range(17))


def test_extends_cycle_is_still_refused_naming_it(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(RecipeError, match="cycle a.yaml -> b.yaml -> a.yaml"):
        load_recipe_dict(tmp_path / "a.yaml")


def test_duplicate_train_section_is_an_error_naming_the_key_and_both_lines(tmp_path, capsys):
    path = tmp_path / "dup.yaml"
    path.write_text(GOOD + "train: {max_steps: 5}\ntrain: {seed: 3}\n")
    err = validate_error(capsys, path)
    assert "duplicate key 'train' (lines 5 and 6)" in err and err.count("\n") == 1


def test_duplicate_key_in_a_nested_section_is_an_error(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD + "train:\n  max_steps: 5\n  max_steps: 6\n")
    with pytest.raises(RecipeError, match="duplicate key 'max_steps'"):
        load_recipe_dict(path)


def test_merge_key_may_be_overridden_by_the_mapping(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD + "x: &t {max_steps: 5, seed: 1}\ntrain: {<<: *t, seed: 2}\n")
    assert load_recipe_dict(path)["train"] == {"max_steps": 5, "seed": 2}


def test_5000_nested_brackets_give_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text(GOOD + "description: " + "[" * 5000 + "]" * 5000 + "\n")
    err = validate_error(capsys, path)
    assert err.count("\n") == 1 and "nested deeper than" in err


def test_error_about_a_huge_value_echoes_at_most_200_characters(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_text(GOOD + "train: {max_steps: '" + "y" * 100_000 + "'}\n")
    err = validate_error(capsys, path)
    assert "train.max_steps: got 'yyy" in err and len(err) < len(str(path)) + 400


def test_short_repr_cuts_long_and_nested_values():
    assert short_repr("abc") == "'abc'"
    assert len(short_repr("x" * 10_000)) <= 120
    nested: list = []
    for _ in range(1000):
        nested = [nested] * 10
    assert len(short_repr(nested)) <= 120


def test_extends_of_a_file_that_is_not_yaml_does_not_echo_it(tmp_path, capsys):
    (tmp_path / "secret").write_text("root:$6$SECRETHASH:19000:0:99999:7:::\n  bin: *SECRETALIAS:19000\n")
    path = tmp_path / "r.yaml"
    path.write_text(GOOD + "extends: secret\n")
    err = validate_error(capsys, path)
    assert "secret" in err and "SECRET" not in err and err.count("\n") == 1


def test_extends_of_a_plain_text_file_says_it_is_not_a_mapping(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("SECRET first line\nsecond line\n")
    path = tmp_path / "r.yaml"
    path.write_text(GOOD + "extends: notes.txt\n")
    err = validate_error(capsys, path)
    assert "not a YAML mapping" in err and "SECRET" not in err


def test_extends_of_a_folder_says_it_is_a_folder(tmp_path, capsys):
    (tmp_path / "parts").mkdir()
    path = tmp_path / "r.yaml"
    path.write_text(GOOD + "extends: parts\n")
    err = validate_error(capsys, path)
    assert "parts: is a folder" in err and "not found" not in err


def test_yaml_syntax_error_is_one_line_without_the_file_text(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD + "train: {SECRET_VALUE: [1, 2\n")
    err = validate_error(capsys, path)
    assert "YAML syntax error at line" in err and "SECRET_VALUE" not in err and err.count("\n") == 1


def test_override_with_an_alias_bomb_is_refused(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD)
    bomb = "[" + ", ".join(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)) + "]"
    with pytest.raises(RecipeError, match="aliases expand to more than"):
        load_runs(path, ["description=[&a0 [lol], " + bomb[1:]])
