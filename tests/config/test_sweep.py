"""Recipe files: extends, overrides, grid x zip expansion, held-out marks."""

import textwrap

import pytest

from scaling_repro.config.recipe_file import apply_overrides, deep_merge
from scaling_repro.config.sweep import load_runs, select_run
from scaling_repro.errors import RecipeError


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


BASE = """
    name: base
    task: {name: synthetic_mt, train_examples: 100}
    model: {name: tiny-s}
    method: {kind: full}
    train: {max_steps: 10, eval_every: 5}
"""


@pytest.fixture
def base(tmp_path):
    return write(tmp_path / "base.yaml", BASE)


def test_extends_deep_merges_the_parent(tmp_path, base):
    child = write(
        tmp_path / "child.yaml",
        """
        extends: base.yaml
        name: child
        train: {max_steps: 20}
    """,
    )
    run = load_runs(child).runs[0]
    assert run.name == "child"
    assert run.train.max_steps == 20 and run.train.eval_every == 5  # merged, not replaced
    assert run.task.train_examples == 100


def test_deep_merge_replaces_lists_and_scalars():
    merged = deep_merge({"a": {"b": [1, 2], "c": 1}}, {"a": {"b": [3]}})
    assert merged == {"a": {"b": [3], "c": 1}}


def test_override_is_typed_by_the_schema(base):
    run = load_runs(base, ["train.max_steps=42", "method.kind=lora", "method.rank=8"]).runs[0]
    assert run.train.max_steps == 42 and isinstance(run.train.max_steps, int)
    assert run.method.kind == "lora" and run.method.rank == 8


def test_override_with_wrong_type_is_rejected(base):
    with pytest.raises(RecipeError, match=r"train\.max_steps: got 'many'"):
        load_runs(base, ["train.max_steps=many"])


def test_override_without_equals_is_rejected(base):
    with pytest.raises(RecipeError, match="expected key.path=value"):
        load_runs(base, ["train.max_steps"])


def test_override_of_unknown_section_names_the_allowed_ones(base):
    with pytest.raises(RecipeError, match="unknown section 'trian'.*allowed: .*train"):
        load_runs(base, ["trian.max_steps=1"])


def test_grid_times_zip_expansion_count(tmp_path, base):
    recipe = write(
        tmp_path / "sweep.yaml",
        """
        extends: base.yaml
        sweep:
          grid:
            task.train_examples: [100, 200, 300]
            task.seed: [0, 1]
          zip:
            - {model.name: [tiny-xs, tiny-s], train.max_steps: [5, 10]}
    """,
    )
    runs = load_runs(recipe).runs
    assert len(runs) == 3 * 2 * 2
    assert {(r.model.name, r.train.max_steps) for r in runs} == {("tiny-xs", 5), ("tiny-s", 10)}
    assert [r.index for r in runs] == list(range(12))
    assert len({r.run_id for r in runs}) == 12


def test_zip_axes_of_unequal_length_are_rejected(tmp_path, base):
    recipe = write(
        tmp_path / "s.yaml",
        """
        extends: base.yaml
        sweep: {zip: [{model.name: [a, b], train.max_steps: [1]}]}
    """,
    )
    with pytest.raises(RecipeError, match="sweep.zip.*equal lengths"):
        load_runs(recipe)


def test_override_of_a_grid_axis_pins_it(tmp_path, base):
    recipe = write(
        tmp_path / "s.yaml",
        """
        extends: base.yaml
        sweep: {grid: {task.train_examples: [100, 200, 300]}}
    """,
    )
    full = load_runs(recipe).runs
    pinned = load_runs(recipe, ["task.train_examples=200"]).runs
    assert len(pinned) == 1 and pinned[0].run_id == full[1].run_id


def test_override_inside_an_axis_that_replaces_it_is_rejected(tmp_path, base):
    recipe = write(
        tmp_path / "s.yaml",
        """
        extends: base.yaml
        sweep: {grid: {method: [{kind: full}, {kind: lora}]}}
    """,
    )
    with pytest.raises(RecipeError, match="sets 'method' as a whole"):
        load_runs(recipe, ["method.lr=0.1"])


def test_holdout_marks_runs(tmp_path, base):
    recipe = write(
        tmp_path / "s.yaml",
        """
        extends: base.yaml
        sweep:
          grid: {task.train_examples: [100, 200]}
          holdout: {task.train_examples: [200]}
    """,
    )
    assert [r.held_out for r in load_runs(recipe).runs] == [False, True]


def test_bad_value_inside_a_sweep_names_the_run(tmp_path, base):
    recipe = write(
        tmp_path / "s.yaml",
        """
        extends: base.yaml
        sweep: {grid: {train.optimizer: [adafactor, sgd]}}
    """,
    )
    with pytest.raises(RecipeError, match=r"train\.optimizer: got 'sgd'.*sweep run 1"):
        load_runs(recipe)


def test_axes_that_change_nothing_are_rejected(tmp_path, base):
    recipe = write(
        tmp_path / "s.yaml",
        """
        extends: base.yaml
        sweep: {grid: {launch.partition: [a, b]}}
    """,
    )
    with pytest.raises(RecipeError, match="are the same run"):
        load_runs(recipe)


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", "extends: b.yaml\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(RecipeError, match="cycle"):
        load_runs(tmp_path / "a.yaml")


def test_select_run_needs_index_for_a_sweep(tmp_path, base):
    recipe = write(tmp_path / "s.yaml", "extends: base.yaml\nsweep: {grid: {task.seed: [0, 1]}}\n")
    sweep = load_runs(recipe)
    with pytest.raises(RecipeError, match="--index 0..1"):
        select_run(sweep)
    assert select_run(sweep, index=1).task.seed == 1
    assert select_run(sweep, run_id=sweep.runs[0].run_id).task.seed == 0


def test_overrides_do_not_mutate_the_input():
    data = {"train": {"max_steps": 1}}
    apply_overrides(data, ["train.max_steps=2"])
    assert data == {"train": {"max_steps": 1}}
