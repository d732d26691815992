"""fit_law: recovers known laws, finds the global optimum, evaluates held-out points, rejects bad input."""

import json

import numpy as np
import pytest
from scipy.special import huber

from scaling_repro.errors import UserError
from scaling_repro.fit import LawFit, fit_law, predict
from scaling_repro.fit.design import Group, build_design
from scaling_repro.fit.laws import get_law
from scaling_repro.fit.optimize import polish

TRUE = {
    "single": {"A": 3.0, "beta": 0.2, "E": 0.6},
    "multiplicative": {"A": 2.1e3, "alpha": 0.36, "beta": 0.081, "E": 0.62},
    "additive": {"A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28, "E": 1.69},
}
GRIDS = {  # (x values, data sizes) typical of each law's use
    "single": (None, np.geomspace(8e3, 1e5, 11)),
    "multiplicative": (np.array([1e9, 2e9, 4e9, 8e9, 16e9]), np.geomspace(8e3, 1e5, 11)),
    "additive": (np.geomspace(7e7, 1.6e10, 8), np.geomspace(5e9, 3e11, 9)),
}


def grid_points(law):
    xs, dfs = GRIDS[law]
    if xs is None:
        return None, dfs
    x, df = np.meshgrid(xs, dfs, indexing="ij")
    return x.ravel(), df.ravel()


@pytest.mark.parametrize("residual", ["linear", "log"])
@pytest.mark.parametrize("law", ["single", "multiplicative", "additive"])
def test_recovers_the_parameters_of_noiseless_data(law, residual):
    x, df = grid_points(law)
    loss = predict(law, TRUE[law], x, df)
    fit = fit_law(x, df, loss, law=law, residual=residual)
    for name, value in TRUE[law].items():
        assert fit.params[name] == pytest.approx(value, rel=1e-4), name
    assert fit.objective < 1e-12


def test_objective_is_the_summed_huber_loss_at_the_reported_parameters():
    x, df = grid_points("multiplicative")
    rng = np.random.default_rng(0)
    loss = predict("multiplicative", TRUE["multiplicative"], x, df) + rng.normal(0, 0.01, len(df))
    fit = fit_law(x, df, loss, law="multiplicative", residual="linear", huber_delta=1e-3)
    residual = fit.predict(x, df) - loss
    assert fit.objective == pytest.approx(huber(1e-3, residual).sum(), rel=1e-9)
    assert set(fit.params) == {"A", "alpha", "beta", "E"}


def test_no_start_finds_a_lower_objective_than_the_fit():
    x, df = grid_points("multiplicative")
    rng = np.random.default_rng(1)
    loss = predict("multiplicative", TRUE["multiplicative"], x, df) + rng.normal(0, 0.005, len(df))
    fit = fit_law(x, df, loss, law="multiplicative")
    design = build_design(get_law("multiplicative"), [Group("all", x, df, loss)])
    top = np.log(loss.max())
    found = []
    for _ in range(25):
        u0 = np.concatenate([rng.uniform(0, 1.5, 2), top + rng.uniform(-6, 2, 2)])
        found.append(polish(design, u0, "linear", 1e-3)[1])
    assert min(found) >= fit.objective * (1 - 1e-9)
    assert np.isclose(found, fit.objective, rtol=1e-7).sum() >= 5  # the optimum is reached from many starts


def test_held_out_points_are_predicted_not_fitted():
    x, df = grid_points("multiplicative")
    rng = np.random.default_rng(2)
    loss = predict("multiplicative", TRUE["multiplicative"], x, df) + rng.normal(0, 0.003, len(df))
    held = x == x.max()
    fit = fit_law(x, df, loss, law="multiplicative", held_out=held)
    moved = loss.copy()
    moved[held] += 1.0  # a different held-out loss must not change the fit
    refit = fit_law(x, df, moved, law="multiplicative", held_out=held)
    assert refit.params == pytest.approx(fit.params, rel=1e-6)
    deviation = np.abs(fit.predict(x, df) - loss)
    assert fit.mad_fit == pytest.approx(deviation[~held].mean())
    assert fit.mad_held_out == pytest.approx(deviation[held].mean())
    assert (fit.n_points, fit.n_held_out) == ((~held).sum(), held.sum())
    assert [p.held_out for p in fit.points] == list(held)


def test_fixed_parameters_are_kept_and_recorded():
    x, df = grid_points("multiplicative")
    loss = predict("multiplicative", TRUE["multiplicative"], x, df)
    fit = fit_law(x, df, loss, law="multiplicative", fixed={"beta": 0.081, "E": 0.62})
    assert fit.params["beta"] == 0.081 and fit.params["E"] == 0.62
    assert fit.fixed == ["E", "beta"]
    assert fit.params["alpha"] == pytest.approx(0.36, rel=1e-5)


def test_record_round_trips_through_json_with_units():
    x, df = grid_points("multiplicative")
    loss = predict("multiplicative", TRUE["multiplicative"], x, df)
    fit = fit_law(x, df, loss, x_unit="parameters", df_unit="examples", labels={"task": "t"})
    again = LawFit.model_validate(json.loads(fit.model_dump_json()))
    assert again == fit
    assert (again.x_unit, again.df_unit) == ("parameters", "examples")
    np.testing.assert_allclose(again.predict(x, df), fit.predict(x, df))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {**a, "loss": a["loss"][:3]}, r"3 fitting point\(s\) but 4 free parameter"),
        (lambda a: {**a, "x": np.where(np.arange(len(a["x"])) == 4, -1.0, a["x"])}, r"x\[4\] = -1.0"),
        (
            lambda a: {**a, "data_size": np.where(np.arange(len(a["x"])) == 2, 0.0, a["data_size"])},
            r"data_size\[2\] = 0.0",
        ),
        (lambda a: {**a, "loss": np.where(np.arange(len(a["x"])) == 1, np.nan, a["loss"])}, r"loss\[1\] = nan"),
        (lambda a: {**a, "x": np.full(len(a["x"]), 1e9)}, "same x"),
        (lambda a: {**a, "x": a["x"][:-1]}, "the same length"),
        (lambda a: {**a, "x": None}, "needs x values"),
        (lambda a: {**a, "law": "cubic"}, "law: got 'cubic'"),
        (lambda a: {**a, "residual": "sqrt"}, "residual: got 'sqrt'"),
        (lambda a: {**a, "huber_delta": 0}, "huber_delta: got 0"),
    ],
)
def test_degenerate_input_is_a_clear_user_error(change, message):
    x, df = grid_points("multiplicative")
    args = {"x": x, "data_size": df, "loss": predict("multiplicative", TRUE["multiplicative"], x, df)}
    args = change(args)
    if len(args["loss"]) == 3:
        args["x"], args["data_size"] = args["x"][:3], args["data_size"][:3]
    with pytest.raises(UserError, match=message):
        fit_law(**args)


def test_fixing_a_parameter_that_the_law_lacks_is_an_error():
    x, df = grid_points("multiplicative")
    with pytest.raises(UserError, match=r"fixed parameters \['B'\]"):
        fit_law(x, df, predict("multiplicative", TRUE["multiplicative"], x, df), fixed={"B": 1.0})
