"""``advise``: the best method by the fitted laws, on both sides of a critical data size."""

import json

import numpy as np
import pytest

import scaling_repro.analysis
from scaling_repro.analysis import published
from scaling_repro.analysis.advice import advise, format_advice
from scaling_repro.cli import main
from scaling_repro.errors import UserError
from scaling_repro.fit.critical import critical_data_size
from scaling_repro.fit.laws import predict


def true_best(paper, task, x, df):
    losses = {m: predict("multiplicative", paper.truth[(task, m)]["model_size"], x, df) for m in published.METHODS}
    return min(losses, key=losses.get)


@pytest.mark.parametrize("task, model_size", [("wmt19_en_zh", 1e9), ("wmt19_en_zh", 4e9), ("wmt14_en_de", 2e9)])
def test_advice_follows_the_generating_laws_across_each_critical_point(paper, paper_fitted, task, model_size):
    truth = {m: ("multiplicative", paper.truth[(task, m)]["model_size"]) for m in published.METHODS}
    switches = []
    for a, b in [("full", "prompt"), ("full", "lora"), ("prompt", "lora")]:
        df_c = float(critical_data_size(truth[a], truth[b], model_size)[0])
        below, above = true_best(paper, task, model_size, df_c / 2), true_best(paper, task, model_size, df_c * 2)
        if not np.isnan(df_c) and below != above:  # a crossing where the best method changes
            switches.append((df_c, below, above))
    assert switches
    for df_c, below, above in switches:
        assert advise(task, model_size, df_c / 2, fitted=paper_fitted, bootstrap=0).best == below
        assert advise(task, model_size, df_c * 2, fitted=paper_fitted, bootstrap=0).best == above


def test_regimes_and_crossings_match_the_generating_laws(paper, paper_fitted):
    advice = advise("wmt19_en_zh", 1e9, 3e4, fitted=paper_fitted, bootstrap=0)
    assert [r.method for r in advice.regimes] == ["prompt", "lora", "full"]
    truth = {m: ("multiplicative", paper.truth[("wmt19_en_zh", m)]["model_size"]) for m in published.METHODS}
    for crossing in advice.crossings:
        expected = critical_data_size(truth[crossing.pair[0]], truth[crossing.pair[1]], 1e9)[0]
        assert crossing.data_size == pytest.approx(expected, rel=0.1)
    assert advice.regimes[0].high == pytest.approx(advice.regimes[1].low)


@pytest.mark.slow
def test_bootstrap_intervals_bracket_the_predictions(paper_fitted):
    advice = advise("mlsum", 2e9, 2e4, fitted=paper_fitted, bootstrap=12, seed=3)
    assert advice.level == 0.9
    for prediction in advice.predictions:
        assert prediction.low <= prediction.loss <= prediction.high
    assert [p.loss for p in advice.predictions] == sorted(p.loss for p in advice.predictions)
    assert advice.best == advice.predictions[0].method


def test_from_paper_uses_table4_without_any_runs():
    assert scaling_repro.analysis.advise is advise  # the package exports the function, not a module
    advice = advise("wmt14_en_de", 1e9, 1e6, from_paper=True)
    expected = {
        m: predict("multiplicative", published.table4("wmt14_en_de", m)["model_size"], 1e9, 1e6)
        for m in published.METHODS
    }
    assert {p.method: p.loss for p in advice.predictions} == pytest.approx(expected)
    assert advice.best == min(expected, key=expected.get)
    assert advice.level is None and all(p.low is None for p in advice.predictions)
    with pytest.raises(UserError, match="no Table 4 column for 'synthetic_mt'"):
        advise("synthetic_mt", 1e9, 1e6, from_paper=True)


def test_advice_warns_when_it_extrapolates(paper_fitted):
    advice = advise("wmt14_en_de", 64e9, 1e4, fitted=paper_fitted, bootstrap=0)
    assert any("model size 64B is outside the fitted range [1B, 16B]" in w for w in advice.warnings)
    assert "Notes:" in format_advice(advice)


def test_advise_command_prints_text_and_json(paper, capsys):
    assert (
        main(["advise", "--from-paper", "--task", "wmt19_en_zh", "--model-size", "1B", "--budget-examples", "50K"]) == 0
    )
    text = capsys.readouterr().out
    assert "Predicted best method: Prompt." in text and "<- your budget" in text
    code = main(
        [
            "advise",
            "--results",
            str(paper.root),
            "--task",
            "wmt19_en_zh",
            "--model-size",
            "1e9",
            "--budget-examples",
            "3e5",
            "--bootstrap",
            "0",
            "--json",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["best"] == "full"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "wmt14_en_de", "--model-size", "1B", "--budget-examples", "8K"], "exactly one of --results"),
        (
            ["--from-paper", "--task", "wmt14_en_de", "--model-size", "big", "--budget-examples", "8K"],
            "--model-size: got 'big'",
        ),
        (["--from-paper", "--model-size", "1B", "--budget-examples", "8K"], "--task is required"),
    ],
)
def test_advise_command_errors_name_the_bad_option(argv, message, capsys):
    assert main(["advise", *argv]) == 2
    assert message in capsys.readouterr().err
