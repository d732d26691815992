"""Validation on published real data: the Chinchilla runs extracted by Besiroglu et al. (2024).

Their published point estimate (arXiv:2404.10102) on the 240 runs left after dropping the 5
highest losses: E = 1.8172, A = 482.01, B = 2085.43, alpha = 0.3478, beta = 0.3658, fitting
log L with a Huber loss (delta 1e-3) as a likelihood with a fitted scale (estimator="huber_mle").
"""

import numpy as np
import pandas as pd
import pytest

from scaling_repro.fit import fit_law
from scaling_repro.fit.design import Group, build_design
from scaling_repro.fit.laws import get_law
from scaling_repro.fit.optimize import polish
from tests.helpers.paths import FIXTURES

FIXTURE = FIXTURES / "chinchilla_epoch.csv"
PUBLISHED = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}


@pytest.fixture(scope="module")
def runs():
    frame = pd.read_csv(FIXTURE, comment="#")
    held = frame["loss"].to_numpy() >= np.sort(frame["loss"])[-5]  # Besiroglu et al. drop the 5 highest losses
    return frame["model_size"].to_numpy(), frame["tokens"].to_numpy(), frame["loss"].to_numpy(), held


def test_fixture_is_the_published_table(runs):
    n, _, loss, held = runs
    assert len(loss) == 245 and held.sum() == 5
    assert np.std(n, ddof=1) == pytest.approx(2464560600.107564, rel=1e-12)  # as printed by the Epoch notebook
    assert np.std(loss, ddof=1) == pytest.approx(0.36438696455830627, rel=1e-12)


def test_reproduces_the_published_estimate_to_three_significant_digits(runs):
    n, d, loss, held = runs
    fit = fit_law(n, d, loss, law="additive", residual="log", huber_delta=1e-3, held_out=held, estimator="huber_mle")
    for name, published in PUBLISHED.items():
        assert f"{fit.params[name]:.3g}" == f"{published:.3g}", (name, fit.params[name], published)


def test_summed_huber_optimum_is_reached_from_many_starts_and_never_beaten(runs):
    n, d, loss, held = runs
    fit = fit_law(n, d, loss, law="additive", residual="log", huber_delta=1e-3, held_out=held)
    design = build_design(get_law("additive"), [Group("all", n[~held], d[~held], loss[~held])])
    rng = np.random.default_rng(0)
    found = []
    for _ in range(20):  # random starts across Hoffmann et al.'s grid of initializations
        start = {
            "A": np.exp(rng.uniform(0, 25)),
            "B": np.exp(rng.uniform(0, 25)),
            "E": np.exp(rng.uniform(-1, 1)),
            "alpha": rng.uniform(0, 2),
            "beta": rng.uniform(0, 2),
        }
        found.append(polish(design, design.internal(start), "log", 1e-3)[1])
    assert min(found) >= fit.objective * (1 - 1e-9)
    assert np.isclose(found, fit.objective, rtol=1e-6).sum() >= 5
    # The summed-Huber optimum agrees with the published (likelihood) estimate to ~2 digits.
    assert fit.params["alpha"] == pytest.approx(PUBLISHED["alpha"], rel=0.01)
    assert fit.params["E"] == pytest.approx(PUBLISHED["E"], rel=0.01)
