"""The three laws: formulas, parameter names, and errors for unknown laws or missing inputs."""

import numpy as np
import pytest

from scaling_repro.errors import UserError
from scaling_repro.fit import get_law, predict


def test_multiplicative_matches_the_papers_worked_example():
    # PAPER.md: En-De FMT (Table 4) at X = 1e9 parameters, Df = 1e6 examples gives ~1.07 nats.
    params = {"A": 1.2e5, "alpha": 0.52, "beta": 0.15, "E": 0.75}
    assert predict("multiplicative", params, 1e9, 1e6) == pytest.approx(1.2e5 * 1e9**-0.52 * 1e6**-0.15 + 0.75)
    assert predict("multiplicative", params, 1e9, 1e6) == pytest.approx(1.07, abs=0.005)


def test_additive_and_single_formulas():
    add = {"A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28, "E": 1.69}
    x, df = np.array([1e8, 1e9]), np.array([1e10, 2e10])
    np.testing.assert_allclose(predict("additive", add, x, df), 400 * x**-0.34 + 410 * df**-0.28 + 1.69)
    single = {"A": 3.0, "beta": 0.1, "E": 0.5}
    np.testing.assert_allclose(predict("single", single, None, df), 3.0 * df**-0.1 + 0.5)


def test_parameter_names_per_law():
    assert get_law("single").params == ("A", "beta", "E")
    assert get_law("multiplicative").params == ("A", "alpha", "beta", "E")
    assert get_law("additive").params == ("A", "alpha", "B", "beta", "E")


def test_unknown_law_is_a_user_error():
    with pytest.raises(UserError, match="law: got 'quadratic'; allowed: 'single'"):
        get_law("quadratic")


def test_law_with_x_needs_x():
    with pytest.raises(UserError, match="needs x values"):
        predict("multiplicative", {"A": 1, "alpha": 1, "beta": 1, "E": 1}, None, [1.0])
