"""Factories of the records tests build by hand: a :class:`RunSpec` and a :class:`LawFit`.

Tests ask for them as the fixtures ``make_run_spec`` and ``make_law_fit`` (tests/conftest.py);
module-level helpers, which cannot ask for fixtures, call :func:`build_run_spec` and
:func:`build_law_fit` directly. Each takes the fields that matter to the test as keyword
overrides of valid defaults.
"""

from __future__ import annotations

from typing import Any

from scaling_repro.config.recipe import RunSpec
from scaling_repro.fit.record import LawFit

# The smallest valid spec: the offline synthetic task on the tiny-s model, full finetuning.
RUN_SPEC_DEFAULTS: dict[str, Any] = {
    "name": "t",
    "task": {"name": "synthetic_mt"},
    "model": {"name": "tiny-s"},
    "method": {"kind": "full"},
}
SECTIONS = ("task", "model", "method", "train", "eval", "launch")

# A multiplicative law with the paper's En-De FMT model-size parameters (Table 4), fitted on 8
# points with 4 held out; no points or bootstrap unless given.
LAW_FIT_DEFAULTS: dict[str, Any] = {
    "law": "multiplicative",
    "formula": "",
    "residual": "linear",
    "huber_delta": 1e-3,
    "params": {"A": 1.2e5, "alpha": 0.52, "beta": 0.15, "E": 0.75},
    "objective": 0.0,
    "n_points": 8,
    "n_held_out": 4,
    "mad_fit": 0.005,
    "mad_held_out": 0.01,
    "points": [],
}


def build_run_spec(**overrides: Any) -> RunSpec:
    """A validated RunSpec: :data:`RUN_SPEC_DEFAULTS` with ``overrides``. A section given as a
    dict (``task={"train_examples": 64}``) is merged into the default section; any other field
    replaces the default."""
    fields = {key: dict(value) if isinstance(value, dict) else value for key, value in RUN_SPEC_DEFAULTS.items()}
    for key, value in overrides.items():
        if key in SECTIONS and isinstance(value, dict) and isinstance(fields.get(key), dict):
            fields[key] = {**fields[key], **value}
        else:
            fields[key] = value
    return RunSpec.model_validate(fields)


def build_law_fit(**overrides: Any) -> LawFit:
    """A LawFit: :data:`LAW_FIT_DEFAULTS` with ``overrides`` (fields replaced whole)."""
    return LawFit(**{**LAW_FIT_DEFAULTS, **overrides})
