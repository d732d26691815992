"""The training log (train_log.jsonl) is never written through a symbolic link or a FIFO
planted in a shared results tree: the run stops with one line naming it."""

from __future__ import annotations

import os
import signal

import pytest

from scaling_repro.errors import UserError
from scaling_repro.train.metrics_log import LOG_FILE, JsonlLog


@pytest.fixture
def planted_link(tmp_path):
    """A run folder whose train_log.jsonl is a link to a file outside it; return (run folder, outside file)."""
    run_dir, outside = tmp_path / "run", tmp_path / "elsewhere.txt"
    run_dir.mkdir()
    outside.write_text("someone else's file\n")
    (run_dir / LOG_FILE).symlink_to(outside)
    return run_dir, outside


def test_a_log_line_is_not_appended_through_a_planted_symlink(planted_link):
    run_dir, outside = planted_link
    with pytest.raises(UserError, match="is a symbolic link") as err:
        JsonlLog(run_dir).write({"event": "train", "step": 1, "loss": 2.0})
    assert str(run_dir / LOG_FILE) in str(err.value) and "\n" not in str(err.value)
    assert outside.read_text() == "someone else's file\n"


def test_a_resumed_run_refuses_a_log_that_is_a_symlink(planted_link):
    run_dir, outside = planted_link
    with pytest.raises(UserError, match="is a symbolic link"):
        JsonlLog(run_dir).truncate_after(0)
    assert outside.read_text() == "someone else's file\n"


def test_a_log_line_is_not_written_into_a_planted_fifo_and_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / LOG_FILE)
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("opening the log blocked on the FIFO"))
    signal.alarm(10)
    try:
        with pytest.raises(UserError, match="FIFO"):
            JsonlLog(tmp_path).write({"event": "train", "step": 1})
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
