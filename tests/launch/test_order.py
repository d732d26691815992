"""Cheapest-first ordering: cost from model size, data size and step budget."""

import pytest

from scaling_repro.config.sweep import load_runs
from scaling_repro.launch.order import estimate_cost, model_params_from_name, order_runs
from tests.helpers.launch_fakes import write_recipe


@pytest.mark.parametrize(
    "name, params",
    [
        ("paper-16b", 16e9),
        ("EleutherAI/pythia-410m", 410e6),
        ("EleutherAI/pythia-1.4b-deduped", 1.4e9),
        ("meta-llama/Llama-2-7b-hf", 7e9),
        ("tiny-s", 1e6),
        ("tiny-m", 4e6),
        ("gpt2", 1e9),  # no size in the name: assumed expensive
    ],
)
def test_model_size_is_read_from_the_model_name(name, params):
    assert model_params_from_name(name) == pytest.approx(params)


def spec(tmp_path, *overrides):
    return load_runs(write_recipe(tmp_path, (100,)), list(overrides)).runs[0]


def test_cost_grows_with_model_size_data_and_steps_and_pet_is_cheaper_than_fmt(tmp_path):
    base = estimate_cost(spec(tmp_path))
    assert estimate_cost(spec(tmp_path, "model.name=tiny-m")) > base
    assert estimate_cost(spec(tmp_path, "task.train_examples=200")) > base
    assert estimate_cost(spec(tmp_path, "train.max_steps=1")) < base
    assert estimate_cost(spec(tmp_path, "method.kind=full", "method.batch_size=16")) > base


def test_data_beyond_the_step_budget_costs_nothing_more(tmp_path):
    capped = ["train.max_steps=10", "method.batch_size=16"]  # 160 examples at most
    assert estimate_cost(spec(tmp_path, *capped, "task.train_examples=1000")) == estimate_cost(
        spec(tmp_path, *capped, "task.train_examples=100000")
    )


def test_equal_costs_keep_the_recipe_order(tmp_path):
    runs = load_runs(write_recipe(tmp_path, (10, 20)), ["sweep.grid.task.seed=[0,1,2]"]).runs
    ordered = order_runs(reversed(runs))
    assert [r.index for r in ordered] == sorted((r.index for r in runs), key=lambda i: (runs[i].task.train_examples, i))
    assert [r.index for r in order_runs(runs, "recipe")] == [r.index for r in runs]
