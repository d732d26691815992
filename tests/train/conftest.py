"""Fixtures of the trainer tests."""

import pytest

from tests.helpers.crash_resume import curves, run


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The crash-safety run trained without a crash: its TrainResult and (train, dev) curves."""
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    return run(run_dir), curves(run_dir)
