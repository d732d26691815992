"""Float options of the commands accept only finite numbers in their range: nan, inf, zero or
a negative number exits with status 2 and one line naming the option and what is allowed."""

from __future__ import annotations

import pytest

from scaling_repro.cli import main
from tests.helpers.paths import RECIPES

RECIPE = str(RECIPES / "tiny" / "base.yaml")
ADVISE = ["advise", "--from-paper", "--task", "wmt19_en_zh", "--model-size", "1B", "--budget-examples", "50K"]


@pytest.mark.parametrize(
    "argv, option, allowed",
    [
        (["sweep", RECIPE, "--stale-after", "nan"], "--stale-after", "a finite number of seconds > 0"),
        (["sweep", RECIPE, "--stale-after", "inf"], "--stale-after", "a finite number of seconds > 0"),
        (["sweep", RECIPE, "--stale-after", "-5"], "--stale-after", "a finite number of seconds > 0"),
        (["sweep", RECIPE, "--stale-after", "0"], "--stale-after", "a finite number of seconds > 0"),
        (["status", RECIPE, "--stale-after", "nan"], "--stale-after", "a finite number of seconds > 0"),
        (["validate", RECIPE, "--peak-tflops", "nan"], "--peak-tflops", "a finite number > 0"),
        (["validate", RECIPE, "--tokens-per-example", "inf"], "--tokens-per-example", "a finite number > 0"),
        (["fit", "runs", "--level", "nan"], "--level", "a number between 0 and 1 (exclusive)"),
        ([*ADVISE, "--level", "1.5"], "--level", "a number between 0 and 1 (exclusive)"),
    ],
)
def test_a_non_finite_or_out_of_range_value_exits_2_with_one_line(argv, option, allowed, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    value = argv[argv.index(option) + 1]
    assert len(errors) == 1 and f"error: argument {option}: got {value!r}; allowed: {allowed}" in errors[0]
