"""RunRecord files: atomic writes and tolerant loading."""

import os

import pytest

from scaling_repro.fileio import atomic_write_text
from scaling_repro.results import RunRecord, load_results, read_record


def record(run_id="abc", **fields) -> RunRecord:
    base = dict(
        run_id=run_id, name="t", status="ok", spec={}, task="synthetic_mt", method="full", model="tiny-s", test_loss=1.5
    )
    base.update(fields)
    return RunRecord(**base)


def test_record_round_trips(tmp_path):
    rec = record(metrics={"bleu": {"all": 12.5}}, model_params=1000)
    rec.write(tmp_path)
    assert read_record(tmp_path) == rec


def test_interrupted_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    atomic_write_text(target, "old")

    def crash(fd):
        raise KeyboardInterrupt  # as if the process was stopped between write and rename

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new" * 1000)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left


def test_completed_atomic_write_replaces_the_file(tmp_path):
    target = tmp_path / "a" / "result.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_load_results_skips_a_corrupt_file_with_a_warning(tmp_path):
    record("good").write(tmp_path / "r1")
    (tmp_path / "r2").mkdir()
    (tmp_path / "r2" / "result.json").write_text('{"run_id": "trunc')
    with pytest.warns(UserWarning, match="skipping unreadable .*r2"):
        records = load_results(tmp_path)
    assert [r.run_id for r in records] == ["good"]


def test_load_results_leaves_out_failed_runs_unless_asked(tmp_path):
    record("good").write(tmp_path / "r1")
    record("bad", status="failed: non-finite loss at step 3", test_loss=None).write(tmp_path / "r2")
    assert [r.run_id for r in load_results(tmp_path)] == ["good"]
    assert len(load_results(tmp_path, include_failed=True)) == 2


def test_load_results_with_run_dirs_reads_only_those_runs(tmp_path):
    record("kept").write(tmp_path / "a" / "r1")
    record("other").write(tmp_path / "a" / "r2")
    assert [r.run_id for r in load_results(tmp_path, run_dirs=[tmp_path / "a" / "r1"])] == ["kept"]


def test_load_results_of_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "nope")
