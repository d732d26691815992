"""A result.json this process may not read is "cannot read", never damaged: it is not pending,
not set aside, not failed, and the fits leave it out with a warning saying why.

Reading is refused by a patched ``open`` (the tests run as root, whom file modes do not stop);
tests/results/test_two_users.py checks the same with real modes and two users.
"""

from __future__ import annotations

import builtins
import errno
import os
import warnings
from pathlib import Path

import pytest

import scaling_repro.results.record as record_module
from scaling_repro.results import (
    DAMAGED_RESULT_FILE,
    RESULT_FILE,
    RunDir,
    RunRecord,
    UnreadableResult,
    load_results,
    read_result,
)

X, Y = "0123456789ab", "ba9876543210"


@pytest.fixture
def deny(monkeypatch):
    """Make reading the given files fail as a file of another user does (or with another errno)."""
    denied: dict[str, int] = {}
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        code = denied.get(os.path.abspath(file)) if isinstance(file, (str, os.PathLike)) else None
        if code is not None:
            raise (PermissionError if code == errno.EACCES else OSError)(code, os.strerror(code), str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(record_module, "open", guarded_open, raising=False)

    def deny_file(path: Path, code: int = errno.EACCES) -> Path:
        denied[os.path.abspath(path)] = code
        return path

    return deny_file


def a_run(root: Path, run_id: str = X, status: str = "ok") -> Path:
    run_dir = root / "sweep" / run_id
    RunRecord(
        run_id=run_id, name="sweep", status=status, spec={}, task="synthetic_mt", method="full", model="tiny-s"
    ).write(run_dir)
    return run_dir


def test_a_result_that_cannot_be_read_for_permission_is_unreadable_not_damaged(tmp_path, deny):
    path = deny(a_run(tmp_path) / RESULT_FILE)
    result = read_result(path)
    assert (result.kind, result.record, result.permission_denied) == ("unreadable", None, True)
    assert result.problem.startswith("PermissionError")


def test_an_io_error_is_unreadable_too_but_not_a_permission_problem(tmp_path, deny):
    path = deny(a_run(tmp_path) / RESULT_FILE, errno.EIO)
    result = read_result(path)
    assert result.kind == "unreadable" and not result.permission_denied


def test_the_run_of_an_unreadable_result_is_neither_pending_nor_failed(tmp_path, deny):
    run_dir = a_run(tmp_path, status="failed: boom")
    deny(run_dir / RESULT_FILE)
    state = RunDir(run_dir).state()
    assert (state.kind, state.damaged, state.permission_denied) == ("unreadable", "", True)


def test_a_run_finds_an_unreadable_result_and_changes_nothing(tmp_path, deny):
    run_dir = a_run(tmp_path)
    before = (run_dir / RESULT_FILE).read_bytes()
    deny(run_dir / RESULT_FILE)
    with pytest.raises(UnreadableResult, match="umask 002"):
        RunDir(run_dir).finished_record()
    assert (run_dir / RESULT_FILE).read_bytes() == before and not (run_dir / DAMAGED_RESULT_FILE).exists()


def test_load_results_skips_an_unreadable_result_with_a_warning_saying_why(tmp_path, deny):
    a_run(tmp_path, X)
    deny(a_run(tmp_path, Y) / RESULT_FILE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [r.run_id for r in load_results(tmp_path)] == [X]
    (message,) = [str(w.message) for w in caught]
    assert message.startswith(f"skipping unreadable {tmp_path / 'sweep' / Y / RESULT_FILE}")
    assert "not a damaged file" in message and "umask 002" in message
