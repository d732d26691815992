"""Critical finetuning data size between two methods: numeric root and Eq. 3's closed form."""

import numpy as np
import pytest

from scaling_repro.analysis import published as paper
from scaling_repro.errors import UserError
from scaling_repro.fit import fit_law, predict
from scaling_repro.fit.critical import critical_data_size, critical_power_law

FMT = ("multiplicative", {"A": 1.2e5, "alpha": 0.52, "beta": 0.15, "E": 0.75})
PROMPT = ("multiplicative", {"A": 3.9e3, "alpha": 0.4, "beta": 0.051, "E": 0.62})


def test_numeric_root_is_where_the_two_laws_predict_the_same_loss():
    x = np.array([1e9, 2e9, 4e9])
    df = critical_data_size(FMT, PROMPT, x)
    assert df.shape == x.shape and np.all(np.isfinite(df))
    np.testing.assert_allclose(predict(*FMT, x, df), predict(*PROMPT, x, df), rtol=1e-9)


def test_closed_form_equals_numeric_root_when_the_methods_share_e():
    same_e = ("multiplicative", {**PROMPT[1], "E": FMT[1]["E"]})
    h, gamma = critical_power_law(FMT, same_e)
    x = np.array([1e9, 4e9, 16e9])
    np.testing.assert_allclose(critical_data_size(FMT, same_e, x, bounds=(1e-3, 1e40)), h * x**gamma, rtol=1e-8)


def test_closed_form_of_table4_gives_table5_exponents():
    # Table 4 is printed to 2 digits; gamma is well-conditioned where beta1 - beta2 is large
    # (En-De FMT vs PET): Table 5 gives -1.2 (vs Prompt) and -2.4 (vs LoRA).
    fits = {m: ("multiplicative", paper.table4("wmt14_en_de", m)["model_size"]) for m in paper.METHODS}
    assert critical_power_law(fits["full"], fits["prompt"])[1] == pytest.approx(-1.2, rel=0.05)
    assert critical_power_law(fits["full"], fits["lora"])[1] == pytest.approx(-2.4, rel=0.05)


def test_no_crossing_gives_nan():
    worse_everywhere = ("multiplicative", {**PROMPT[1], "E": 5.0})
    assert np.isnan(critical_data_size(FMT, worse_everywhere, 1e9)).all()


def test_accepts_fitted_laws():
    x, df = np.meshgrid([1e9, 2e9, 4e9, 8e9], np.geomspace(1e4, 1e6, 8), indexing="ij")
    fits = [fit_law(x.ravel(), df.ravel(), predict(*law, x.ravel(), df.ravel())) for law in (FMT, PROMPT)]
    np.testing.assert_allclose(critical_data_size(*fits, 2e9), critical_data_size(FMT, PROMPT, 2e9), rtol=1e-4)


def test_closed_form_needs_two_multiplicative_laws_with_different_beta():
    with pytest.raises(UserError, match="two multiplicative laws"):
        critical_power_law(("single", {"A": 1, "beta": 0.1, "E": 1}), PROMPT)
    with pytest.raises(UserError, match="same beta"):
        critical_power_law(PROMPT, PROMPT)
