"""The paper's joint procedure on data generated from its own Table 4 (plus noise)."""

from dataclasses import replace

import numpy as np
import pytest
from scipy.special import huber

from scaling_repro.analysis import published as paper
from scaling_repro.errors import UserError
from scaling_repro.fit import predict
from scaling_repro.fit.joint import bootstrap_joint, fit_joint

COLUMNS = [(task, method) for task in paper.TASKS for method in paper.METHODS]


def summed_huber(params, points, delta=1e-3):
    fit = ~points.held_out
    return huber(
        delta, predict("multiplicative", params, points.x[fit], points.data_size[fit]) - points.loss[fit]
    ).sum()


@pytest.mark.parametrize("task, method", COLUMNS)
def test_table4_column_is_recovered_within_the_noise(task, method):
    truth = paper.table4(task, method)
    # Paper-like noise (0.005 nats per run, 3 runs per point): the fit is at least as good as
    # the true law and predicts it, held-out points included, to well within the point noise.
    points = paper.synthetic_points(task, method, noise=0.005, seed=1)
    joint = fit_joint(points)
    assert joint.joint_objective <= sum(summed_huber(truth[f], points[f]) for f in joint.shared_over) * (1 + 1e-9)
    for factor, fit in joint.fits.items():
        true_loss = predict("multiplicative", truth[factor], points[factor].x, points[factor].data_size)
        assert np.abs(fit.predict(points[factor].x, points[factor].data_size) - true_loss).mean() < 0.005 / np.sqrt(3)
    # Little noise: the parameters themselves come back.
    joint = fit_joint(paper.synthetic_points(task, method, noise=1e-4, seed=1))
    for factor, fit in joint.fits.items():
        for name in ("A", "alpha", "beta"):
            if factor == "pet_size" and name == "alpha":  # |alpha_t| ~ 0.002: compare absolutely
                assert fit.params[name] == pytest.approx(truth[factor][name], abs=5e-4)
            else:
                assert fit.params[name] == pytest.approx(truth[factor][name], rel=0.05), (factor, name)
        assert fit.params["E"] == pytest.approx(truth[factor]["E"], rel=0.05, abs=2e-3)


def test_beta_and_e_are_shared_and_fixed_in_every_factor_refit():
    points = paper.synthetic_points("wmt14_en_de", "prompt", seed=3)
    joint = fit_joint(points)
    assert joint.shared_over == ["model_size", "pretrain_data"]
    assert set(joint.fits) == {"model_size", "pretrain_data", "pet_size"}
    for factor, fit in joint.fits.items():
        assert fit.fixed == ["E", "beta"]
        assert (fit.params["beta"], fit.params["E"]) == (joint.shared["beta"], joint.shared["E"])
        assert fit.labels["factor"] == factor
    assert joint.joint_params["beta"] == joint.shared["beta"]
    assert "alpha[model_size]" in joint.joint_params and "alpha[pretrain_data]" in joint.joint_params


def test_additive_joint_law_has_one_b_per_factor():
    joint = fit_joint(paper.synthetic_points("wmt14_en_de", "full", seed=4), law="additive")
    assert {"B[model_size]", "B[pretrain_data]"} <= set(joint.joint_params)
    assert set(joint.fits["model_size"].params) == {"A", "alpha", "B", "beta", "E"}


def test_joint_procedure_needs_an_x_law_and_a_joint_factor():
    points = paper.synthetic_points("wmt14_en_de", "lora", seed=5)
    with pytest.raises(UserError, match="needs a law with an X factor"):
        fit_joint(points, law="single")
    with pytest.raises(UserError, match="at least one of"):
        fit_joint({"pet_size": points["pet_size"]})


def test_bootstrap_of_the_whole_procedure_gives_intervals_around_the_estimates():
    points = paper.synthetic_points("wmt14_en_de", "full", seed=6)
    joint = bootstrap_joint(fit_joint(points), points, n_samples=20, seed=0)
    for fit in joint.fits.values():
        assert fit.bootstrap.n_samples == 20
        for name, (low, high) in fit.bootstrap.intervals.items():
            assert low <= fit.params[name] <= high, name
        low, high = fit.bootstrap.intervals["beta"]
        assert high > low  # beta is re-estimated in every replicate


def test_a_joint_factor_with_one_distinct_x_is_an_error():
    points = paper.synthetic_points("wmt14_en_de", "full", seed=7)
    one_size = points["model_size"]
    rows = one_size.x == one_size.x.min()
    points["model_size"] = replace(
        one_size,
        x=one_size.x[rows],
        data_size=one_size.data_size[rows],
        loss=one_size.loss[rows],
        held_out=one_size.held_out[rows],
        runs=tuple(r for r, keep in zip(one_size.runs, rows) if keep),
    )
    with pytest.raises(UserError, match=r"factor 'model_size': every fitting point has the same x \(1e\+09\)"):
        fit_joint(points)
