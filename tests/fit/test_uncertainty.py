"""Bootstrap intervals for parameters and predictions, resampling points or runs."""

import numpy as np
import pytest

from scaling_repro.errors import UserError
from scaling_repro.fit import bootstrap_fit, fit_law, predict

TRUE = {"A": 2.1e3, "alpha": 0.36, "beta": 0.081, "E": 0.62}


def noisy(noise, seed=0, runs=3):
    x, df = (a.ravel() for a in np.meshgrid([1e9, 2e9, 4e9, 8e9], np.geomspace(8e3, 1e5, 11), indexing="ij"))
    rng = np.random.default_rng(seed)
    run_losses = predict("multiplicative", TRUE, x, df)[:, None] + rng.normal(0, noise, (len(x), runs))
    return x, df, run_losses


def fitted(noise, **kwargs):
    x, df, runs = noisy(noise)
    return fit_law(x, df, runs.mean(axis=1), runs=runs, **kwargs)


def width(fit, name):
    low, high = fit.bootstrap.intervals[name]
    return high - low


@pytest.mark.parametrize("resample", ["points", "runs"])
def test_intervals_bracket_the_estimate_and_shrink_with_the_noise(resample):
    loud = fitted(0.005, bootstrap=30, resample=resample)
    quiet = fitted(0.0005, bootstrap=30, resample=resample)
    for name in TRUE:
        low, high = loud.bootstrap.intervals[name]
        assert low <= loud.params[name] <= high
        assert width(quiet, name) < 0.3 * width(loud, name), name


def test_prediction_interval_brackets_the_prediction():
    fit = fitted(0.005, bootstrap=30)
    x, df = np.array([16e9, 16e9]), np.array([1e5, 1e6])  # extrapolations
    low, high = fit.prediction_interval(x, df)
    assert np.all(low <= fit.predict(x, df)) and np.all(fit.predict(x, df) <= high)
    wide_low, wide_high = fit.prediction_interval(x, df, level=0.99)
    assert np.all(wide_low <= low) and np.all(high <= wide_high)


def test_same_seed_same_intervals_and_a_fit_can_be_bootstrapped_later():
    fit = fitted(0.005)
    a, b = bootstrap_fit(fit, 10, seed=3), bootstrap_fit(fit, 10, seed=3)
    assert a.bootstrap.intervals == b.bootstrap.intervals
    assert fit.bootstrap is None


def test_resampling_runs_needs_runs():
    x, df, runs = noisy(0.005, runs=1)
    fit = fit_law(x, df, runs[:, 0])
    with pytest.raises(UserError, match="needs points with several runs"):
        bootstrap_fit(fit, 10, resample="runs")
    with pytest.raises(ValueError, match="no bootstrap"):
        fit.prediction_interval(1e9, 1e4)
