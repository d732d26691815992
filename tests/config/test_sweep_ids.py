"""A sweep computes each run id once, from sections its runs share where no axis changes them."""

import pytest

import scaling_repro.config.recipe as recipe_module
from scaling_repro.config.recipe import RunSpec
from scaling_repro.config.sweep import load_runs
from tests.helpers.launch_fakes import write_recipe


@pytest.fixture
def canonical_json_calls(monkeypatch):
    calls = []
    real = recipe_module.canonical_json

    def counted(value):
        calls.append(value)
        return real(value)

    monkeypatch.setattr(recipe_module, "canonical_json", counted)
    return calls


def test_each_section_is_serialized_once_however_often_run_ids_are_read(tmp_path, canonical_json_calls):
    runs = load_runs(write_recipe(tmp_path)).runs  # six runs over task.train_examples
    for _ in range(3):
        assert len({(run.run_id, run.run_dir) for run in runs}) == 6
    assert len(canonical_json_calls) == 6 + 3  # each run's task; the model, method and train they share


def test_runs_that_share_sections_have_the_ids_of_runs_validated_alone(tmp_path):
    runs = load_runs(write_recipe(tmp_path), ["method.rank=8", "train.threads=2"]).runs
    assert runs[0].method is runs[1].method and runs[0].task is not runs[1].task
    alone = [RunSpec.model_validate(run.model_dump()) for run in runs]
    assert [run.run_id for run in runs] == [run.run_id for run in alone]
    assert runs == tuple(alone)


def test_runs_with_equal_values_of_a_swept_section_share_it(tmp_path):
    runs = load_runs(write_recipe(tmp_path, (10, 20), extra="    method.rank: [4, 8]\n")).runs
    by_rank = {}
    for run in runs:
        by_rank.setdefault(run.method.rank, set()).add(id(run.method))
    assert {rank: len(ids) for rank, ids in by_rank.items()} == {4: 1, 8: 1}
    assert len({run.run_id for run in runs}) == 4
