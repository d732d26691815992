"""RunRecords (or a table) -> fit inputs: x per factor, seeds averaged, held-out points."""

import numpy as np
import pandas as pd
import pytest

from scaling_repro.errors import UserError
from scaling_repro.fit.points import holdout_mask, points_from_records, points_from_table
from scaling_repro.results import RunRecord


def record(
    i,
    *,
    method="lora",
    model_params=1000,
    pretrain_tokens=50_000,
    pet_params=4,
    examples=100,
    loss=2.0,
    seed=0,
    held_out=False,
    name="exp",
    task="synthetic_mt",
    status="ok",
):
    return RunRecord(
        run_id=f"r{i}",
        name=name,
        status=status,
        spec={},
        task=task,
        method=method,
        model=f"m{model_params}",
        model_params=model_params,
        pretrain_tokens=pretrain_tokens,
        pet_params=pet_params,
        finetune_examples=examples,
        seed=seed,
        test_loss=loss,
        held_out=held_out,
    )


def model_size_runs():
    runs, i = [], 0
    for params in (1000, 2000, 4000):
        for examples in (100, 300):
            for seed in range(3):
                runs.append(
                    record(
                        i,
                        model_params=params,
                        examples=examples,
                        seed=seed,
                        loss=1.0 + params / 1e4 + examples / 1e3 + seed / 100,
                        held_out=params == 4000,
                    )
                )
                i += 1
    return runs


def test_model_size_points_average_the_seeds_of_each_setting():
    points = points_from_records(model_size_runs(), "model_size")
    assert list(points.x) == [1000, 1000, 2000, 2000, 4000, 4000]
    assert list(points.data_size) == [100, 300] * 3
    assert points.loss[0] == pytest.approx(1.0 + 0.1 + 0.1 + 0.01)  # mean of seeds 0, 1, 2
    assert all(len(r) == 3 for r in points.runs)
    assert list(points.held_out) == [False] * 4 + [True] * 2  # the runs' held_out mark
    assert (points.x_unit, points.df_unit) == ("parameters", "examples")
    assert points.labels == {"task": "synthetic_mt", "method": "lora", "factor": "model_size"}


@pytest.mark.parametrize(
    "factor, field, unit",
    [
        ("pretrain_data", "pretrain_tokens", "tokens"),
        ("pet_size", "pet_params", "LoRA rank"),
        ("finetune_data", None, None),
    ],
)
def test_each_factor_takes_its_own_x(factor, field, unit):
    runs = [record(i, **({field: 10 * (i + 1)} if field else {}), examples=100 * (i + 1)) for i in range(4)]
    points = points_from_records(runs, factor)
    assert points.x_unit == unit
    if field is None:
        assert points.x is None
    else:
        assert list(points.x) == [10, 20, 30, 40]


def test_a_point_mixing_settings_is_an_error_not_an_average():
    runs = [record(0, pet_params=4), record(1, pet_params=16)]  # same model size and Df
    with pytest.raises(UserError, match=r"mixes runs with different pet_params \[4, 16\]"):
        points_from_records(runs, "model_size")
    assert len(points_from_records(runs, "model_size", where={"pet_params": 4})) == 1


def test_several_methods_need_a_choice_and_failed_runs_are_ignored():
    runs = [record(0), record(1, method="prompt"), record(2, status="failed: oom", model_params=9)]
    with pytest.raises(UserError, match=r"several methods \['lora', 'prompt'\]; choose one with --method"):
        points_from_records(runs, "model_size")
    assert list(points_from_records(runs, "model_size", method="lora").x) == [1000]


def test_a_run_without_the_factor_is_named():
    with pytest.raises(UserError, match="run r0 .* has no pet_params"):
        points_from_records([record(0, method="full", pet_params=None)], "pet_size")


def test_holdout_rules():
    x = np.array([1, 1, 2, 2, 3, 3], float)
    df = np.array([10, 20, 10, 20, 10, 20], float)
    marked = np.array([1, 0, 0, 0, 0, 0], bool)
    assert list(holdout_mask(x, df, marked, "largest-x")) == [0, 0, 0, 0, 1, 1]
    assert list(holdout_mask(x, df, marked, "largest-df")) == [0, 1, 0, 1, 0, 1]
    assert list(holdout_mask(x, df, marked, "largest")) == [0, 1, 0, 1, 1, 1]
    assert list(holdout_mask(x, df, marked, "largest-x:2")) == [0, 0, 1, 1, 1, 1]
    assert list(holdout_mask(x, df, marked, "marked+largest-x")) == [1, 0, 0, 0, 1, 1]
    assert not holdout_mask(x, df, marked, "none").any()
    with pytest.raises(UserError, match="holdout: got 'biggest'"):
        holdout_mask(x, df, marked, "biggest")


def test_table_rows_with_the_same_point_are_runs():
    frame = pd.DataFrame({"N": [1e8, 1e8, 2e8], "D": [1e9, 1e9, 1e9], "loss": [3.0, 3.2, 2.9], "held": [0, 0, 1]})
    points = points_from_table(frame, "N", "D", "loss", held_out_column="held")
    assert list(points.loss) == pytest.approx([3.1, 2.9])
    assert list(points.held_out) == [False, True]
    with pytest.raises(UserError, match=r"column 'loss', row 2: 'x' is not a finite number"):
        points_from_table(frame.assign(loss=["3", "x", "2"]), "N", "D", "loss")
    with pytest.raises(UserError, match=r"no column\(s\) \['tokens'\]"):
        points_from_table(frame, "N", "tokens", "loss")
