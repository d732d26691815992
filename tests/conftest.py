"""Shared test set-up: one torch thread (2-core CI), offline hubs, deterministic algorithms;
fixtures that tests of several packages use."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

# Session fixtures of synthetic results from the paper's Table 4 (paper, paper_fitted,
# tiny_like), for the analysis, figure and table tests; each is built once, when first used.
pytest_plugins = ["tests.helpers.figures_fixtures"]


@pytest.fixture
def fake_runs(monkeypatch):
    """Make the sweeps of a test run ``launch_fakes.run_spec`` instead of the pipeline: in this
    process and in forked ``--jobs`` children. Child interpreters get the fakes through
    ``launch_fakes.subprocess_env()`` (``PYTHONPATH``), never through the environment of the
    forkserver, which lives on for later tests that train for real."""
    from tests.helpers import launch_fakes

    monkeypatch.setattr("scaling_repro.pipeline.run_spec", launch_fakes.run_spec)
    monkeypatch.setattr("scaling_repro.launch.local._run_forked", launch_fakes.run_forked)


@pytest.fixture
def make_run_spec():
    """``make_run_spec(**overrides)``: a valid RunSpec (synthetic_mt, tiny-s, full finetuning)
    with the given fields; a section given as a dict is merged into the default one."""
    from tests.helpers.factories import build_run_spec

    return build_run_spec


@pytest.fixture
def make_law_fit():
    """``make_law_fit(**overrides)``: a multiplicative LawFit (Table 4's En-De FMT parameters)
    with the given fields."""
    from tests.helpers.factories import build_law_fit

    return build_law_fit
