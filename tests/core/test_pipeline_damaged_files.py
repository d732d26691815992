"""Damaged files of a run directory under `scaling-repro run` / `evaluate`: a one-line message
naming the file, never a traceback; a run whose result is unreadable is finished again."""

from __future__ import annotations

import logging

import pytest

from scaling_repro.cli import main
from scaling_repro.config.sweep import load_runs
from scaling_repro.results import DAMAGED_RESULT_FILE, RESULT_FILE, SPEC_FILE, read_record
from scaling_repro.train.checkpoint import checkpoint_dir

GARBLED = b'{"run_id": "0597f6e5b47e", "stat'


def finished_run(recipe):
    assert main(["run", str(recipe)]) == 0
    return load_runs(recipe).runs[0].run_dir


def warnings_text(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


@pytest.mark.slow
def test_run_finishes_again_a_run_whose_result_json_is_unreadable(recipe, caplog):
    run_dir = finished_run(recipe)
    (run_dir / RESULT_FILE).write_bytes(GARBLED)
    with caplog.at_level(logging.WARNING):
        assert main(["run", str(recipe)]) == 0
    assert str(run_dir / RESULT_FILE) in warnings_text(caplog)
    assert read_record(run_dir).ok and read_record(run_dir).steps == 8
    assert (run_dir / DAMAGED_RESULT_FILE).read_bytes() == GARBLED  # kept, not lost


def test_evaluate_finishes_again_a_run_whose_result_json_is_unreadable(recipe, caplog):
    run_dir = finished_run(recipe)
    (run_dir / RESULT_FILE).write_bytes(GARBLED)
    with caplog.at_level(logging.WARNING):
        assert main(["evaluate", str(run_dir)]) == 0
    assert str(run_dir / RESULT_FILE) in warnings_text(caplog)
    assert read_record(run_dir).ok and read_record(run_dir).steps == 8
    assert (run_dir / DAMAGED_RESULT_FILE).read_bytes() == GARBLED


def test_evaluate_of_an_unreadable_spec_json_is_a_one_line_error(recipe, capsys):
    run_dir = finished_run(recipe)
    (run_dir / SPEC_FILE).write_bytes(GARBLED)
    capsys.readouterr()
    assert main(["evaluate", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(run_dir / SPEC_FILE) in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_run_with_a_truncated_checkpoint_restarts_with_a_warning_naming_the_file(recipe, caplog, monkeypatch):
    # killed after its last step checkpoint, before result.json (a finished run drops its step checkpoints)
    monkeypatch.setattr("scaling_repro.pipeline.drop_step_checkpoints", lambda run_dir: 0)
    run_dir = finished_run(recipe)
    monkeypatch.undo()
    (run_dir / RESULT_FILE).unlink()
    (damaged,) = checkpoint_dir(run_dir).glob("step-*/model.safetensors")
    damaged.write_bytes(damaged.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        assert main(["run", str(recipe)]) == 0
    assert str(damaged) in warnings_text(caplog)
    assert read_record(run_dir).ok and read_record(run_dir).steps == 8


def test_leftovers_of_killed_atomic_writes_are_removed_on_the_next_start(recipe):
    run_dir = finished_run(recipe)
    (run_dir / RESULT_FILE).unlink()  # killed while writing its result
    leftovers = [run_dir / ".generations.jsonl.k1ll3d.tmp", run_dir / f".{RESULT_FILE}.k1ll3d.tmp"]
    for path in leftovers:
        path.write_text("half", encoding="utf-8")
    assert main(["run", str(recipe)]) == 0
    assert not any(path.exists() for path in leftovers)
