"""Grouping runs into scaling experiments (figure axes) from RunRecords alone."""

import numpy as np
import pytest

from scaling_repro.analysis import published
from scaling_repro.analysis.experiments import Missing, find_experiment, is_baseline
from scaling_repro.analysis.fitted_results import FittedResults
from scaling_repro.errors import UserError
from scaling_repro.results import RunRecord


def record(run_id, model_params, pretrain_tokens, df, pet=None, name="r", held_out=False, method="lora", steps=100):
    return RunRecord(
        run_id=run_id,
        name=name,
        status="ok",
        spec={"train": {"max_steps": steps}},
        held_out=held_out,
        task="t",
        method=method,
        model=f"m{model_params}",
        model_params=model_params,
        pretrain_tokens=pretrain_tokens,
        pet_params=pet,
        finetune_examples=df,
        test_loss=1.0 + 1 / df,
        steps=steps,
    )


@pytest.mark.parametrize(
    "factor, field, grid",
    [
        ("model_size", "model_params", published.MODEL_SIZES),
        ("pretrain_data", "pretrain_tokens", published.PRETRAIN_TOKENS["wmt19_en_zh"]),
        ("pet_size", "pet_params", published.PET_SIZES["lora"]),
    ],
)
def test_each_factor_of_the_paper_grid_is_found_with_its_values(paper_fitted, factor, field, grid):
    exp = paper_fitted.experiment("wmt19_en_zh", "lora", factor)
    assert exp.x_values == [float(v) for v in grid]
    assert exp.df_values == [float(v) for v in published.FINETUNE_EXAMPLES[("wmt19_en_zh", "lora")]]
    assert field not in exp.fixed


def test_one_run_set_serves_all_three_experiments(paper_fitted):
    shared = {
        r.run_id
        for r in paper_fitted.experiment("wmt14_en_de", "prompt", "model_size").records
        if r.model_params == 1e9
    }
    for factor in ("pretrain_data", "pet_size"):
        ids = {r.run_id for r in paper_fitted.experiment("wmt14_en_de", "prompt", factor).records}
        assert shared & ids, factor


def test_held_out_marks_count_only_in_experiments_that_their_recipe_varies(paper_fitted):
    # paper-pretrain-data marks its largest checkpoint (the 1B model's final one) held out;
    # in the model-size experiment 1B is the smallest model and stays a fitting point.
    points = paper_fitted.points("wmt14_en_de", "full", "model_size")
    largest_df = points.data_size.max()
    expected = (points.x == points.x.max()) | (points.data_size == largest_df)
    np.testing.assert_array_equal(points.held_out, expected)
    pretrain = paper_fitted.points("wmt14_en_de", "full", "pretrain_data")
    assert pretrain.held_out[pretrain.x == pretrain.x.max()].all()


def test_model_ladder_uses_each_models_final_checkpoint():
    # Two models pretrained for different budgets, plus an intermediate checkpoint of the first.
    runs = [record(f"a{df}", 10, 1000, df) for df in (10, 100)] + [record(f"b{df}", 20, 3000, df) for df in (10, 100)]
    runs += [record(f"c{df}", 10, 500, df) for df in (10, 100)]
    exp = find_experiment(runs, "t", "lora", "model_size")
    assert sorted({(r.model_params, r.pretrain_tokens) for r in exp.records}) == [(10, 1000), (20, 3000)]


def test_missing_experiment_says_which_runs_are_needed():
    runs = [record(f"a{df}", m, 1000, df, pet=4) for m in (10, 20) for df in (10, 100)]
    with pytest.raises(Missing, match=r"pretrain_tokens value\(s\) .* \[1000\]"):
        find_experiment(runs, "t", "lora", "pretrain_data")
    with pytest.raises(Missing, match="PET size does not apply to FMT"):
        find_experiment(runs, "t", "full", "pet_size")
    with pytest.raises(Missing, match="no successful finetuned runs"):
        find_experiment(runs, "other", "lora", "model_size")


def test_baseline_runs_are_not_points_of_an_experiment():
    runs = [record(f"a{m}{df}", m, 1000, df) for m in (10, 20) for df in (10, 100)]
    baseline = record("base", 10, 1000, 10, steps=0)
    assert is_baseline(baseline) and not is_baseline(runs[0])
    exp = find_experiment(runs + [baseline], "t", "lora", "model_size")
    assert "base" not in {r.run_id for r in exp.records}


def test_auto_holdout_uses_marks_else_the_largest_settings_while_enough_points_remain():
    grid = [(m, df) for m in (10, 20, 40, 80) for df in (10, 100, 1000)]
    unmarked = find_experiment([record(f"{m}-{df}", m, 1, df) for m, df in grid], "t", "lora", "model_size")
    assert unmarked.holdout_rule() == "largest"
    points = unmarked.points()
    np.testing.assert_array_equal(points.held_out, (points.x == 80) | (points.data_size == 1000))
    small = [(m, df) for m in (10, 20, 40) for df in (10, 100, 1000)]  # 4 points would remain to fit 4 parameters
    assert (
        find_experiment([record(f"{m}-{df}", m, 1, df) for m, df in small], "t", "lora", "model_size").holdout_rule()
        == "largest-df"
    )
    marked = find_experiment(
        [record(f"{m}-{df}", m, 1, df, held_out=df == 1000) for m, df in grid], "t", "lora", "model_size"
    )
    assert marked.holdout_rule() == "marked"
    np.testing.assert_array_equal(marked.points().held_out, marked.points().data_size == 1000)


def test_a_bad_holdout_rule_is_rejected_when_the_study_is_made(paper):
    with pytest.raises(UserError, match="holdout: got 'biggest'"):
        FittedResults(paper.records, holdout="biggest")
