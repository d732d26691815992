"""Runs whose result.json this user cannot read (a teammate's, kept from the group by its
modes): `status` shows them as "cannot read (permission)" with what to change, never as failed
or pending, and no sweep worker, `--rerun-failed` included, runs, claims or moves them.

Reading is refused by a patched ``open`` (the tests run as root, whom file modes do not stop);
tests/results/test_two_users.py checks the same with real modes and two users.
"""

from __future__ import annotations

import builtins
import errno
import json
import logging
import os
import time
from pathlib import Path

import pytest

import scaling_repro.results.record as record_module
from scaling_repro.config.sweep import load_runs
from scaling_repro.launch.claims import CLAIMS_DIR
from scaling_repro.launch.execute import SweepOptions, execute_run, format_summary, plan_run
from scaling_repro.launch.plan import describe_skipped
from scaling_repro.launch.status import format_status, status_of_directory, status_of_specs
from scaling_repro.results import RESULT_FILE, RunDir, new_record


@pytest.fixture
def deny(monkeypatch):
    """Make reading the given files fail with a permission error, as a teammate's file does."""
    denied: set[str] = set()
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(file) in denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(record_module, "open", guarded_open, raising=False)
    return lambda path: denied.add(os.path.abspath(path))


@pytest.fixture
def specs(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"name: shared\noutput_dir: {json.dumps(str(tmp_path / 'runs'))}\n"
        "task: {name: synthetic_mt}\nmodel: {name: tiny-s}\nmethod: {kind: lora}\n"
        "sweep:\n  grid:\n    task.train_examples: [10, 20, 30]\n"
    )
    return load_runs(recipe).runs


def finish(spec, status: str = "ok") -> bytes:
    """Record ``spec`` with ``status``; return the bytes of its result.json."""
    return RunDir.of(spec).write_result(new_record(spec, status, wall_seconds=60.0)).read_bytes()


def test_status_shows_an_unreadable_run_as_cannot_read_with_a_hint_not_as_failed(specs, deny, tmp_path):
    done, failed, theirs = specs
    finish(done)
    finish(failed, "failed: out of memory")
    finish(theirs, "failed: boom")  # what it holds is unknown to this user
    deny(theirs.run_dir / RESULT_FILE)
    for status in (status_of_specs(specs, "recipe", 600), status_of_directory(tmp_path / "runs", 600)):
        assert status.counts() == {"done": 1, "running": 0, "failed": 1, "pending": 0, "unreadable": 1}
        report = format_status(status)
        assert "cannot read 1" in report and "cannot read (permission)" in report and "umask 002" in report
        failures = report.split("failures")[1].split("cannot read")[0]
        assert failed.run_id in failures and theirs.run_id not in failures


def test_status_without_unreadable_runs_counts_the_four_states_only(specs):
    finish(specs[0])
    status = status_of_specs(specs, "recipe", 600)
    assert list(status.counts()) == ["done", "running", "failed", "pending"]
    assert "cannot read" not in format_status(status)


def test_status_of_unreadable_runs_does_not_suggest_rerun_failed(specs, deny):
    for spec in specs:
        finish(spec, "failed: boom")
        deny(spec.run_dir / RESULT_FILE)
    report = format_status(status_of_specs(specs, "recipe", 600))
    assert "cannot read 3" in report and "failed 0" in report and "--rerun-failed`" not in report


def test_rerun_failed_leaves_an_unreadable_run_alone_with_a_warning(specs, deny, caplog):
    theirs = specs[0]
    before = finish(theirs, "failed: boom")
    deny(theirs.run_dir / RESULT_FILE)
    ran = []
    options = SweepOptions(retry_failed_before=time.time() + 1)
    assert plan_run(theirs, options).kind == "unreadable"
    with caplog.at_level(logging.WARNING, logger="scaling_repro.launch.execute"):
        outcome = execute_run(theirs, lambda spec, claim: ran.append(spec), options)
    assert outcome.kind == "unreadable" and not outcome.ran and ran == []
    assert "cannot read" in caplog.text and str(theirs.run_dir / RESULT_FILE) in caplog.text
    assert sorted(p.name for p in theirs.run_dir.iterdir()) == [RESULT_FILE]  # not moved, not claimed
    assert (theirs.run_dir / RESULT_FILE).read_bytes() == before
    assert "1 cannot read result.json" in format_summary([outcome])
    assert "1 with a result.json this user cannot read" in describe_skipped([outcome])


def test_a_result_that_becomes_unreadable_during_the_run_gets_no_failed_record(specs, deny):
    spec = specs[0]

    def runner(spec, claim):
        finish(spec)
        deny(spec.run_dir / RESULT_FILE)

    outcome = execute_run(spec, runner, SweepOptions())
    assert outcome.kind == "failed" and "cannot read" in outcome.detail and "nothing recorded" in outcome.detail
    assert not list(Path(spec.run_dir).glob("result.*.json"))
    assert sorted(p.name for p in spec.run_dir.iterdir()) == [CLAIMS_DIR, RESULT_FILE]
