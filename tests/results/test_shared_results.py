"""A results tree a team shares: every run counted once, however it is copied or linked, and
every command (load_results, status, report) sees the same runs; a result file far too large
to be a record is refused unread."""

from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path

import pytest

from scaling_repro.launch.status import format_status, status_of_directory
from scaling_repro.results import (
    MAX_RESULT_BYTES,
    RESULT_FILE,
    RunDir,
    RunRecord,
    find_run_dirs,
    iter_result_files,
    load_results,
    read_result,
)

X, Y, Z = "0123456789ab", "ba9876543210", "abcdefabcdef"


def record(run_id: str, name: str = "sweep", **fields) -> RunRecord:
    base = dict(run_id=run_id, name=name, status="ok", spec={}, task="synthetic_mt", method="full", model="tiny-s")
    return RunRecord(**{**base, "test_loss": 1.5, **fields})


def write(run_dir: Path, rec: RunRecord) -> Path:
    return rec.write(run_dir)


def loaded(root: Path, **kwargs) -> tuple[list[str], list[str]]:
    """Return the run ids load_results finds and the warnings it gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = load_results(root, **kwargs)
    return [r.run_id for r in records], [str(w.message) for w in caught]


@pytest.mark.parametrize("copy_name", [f"{X}.bak", "000-copy"])  # sorted after, and before, the original
def test_a_copied_run_folder_is_counted_once_with_a_warning_naming_both_paths(tmp_path, copy_name):
    runs = tmp_path / "runs"
    original = runs / "sweep" / X
    write(original, record(X))
    write(runs / "sweep" / Y, record(Y))
    shutil.copytree(original, runs / "sweep" / copy_name)
    ids, warned = loaded(runs)
    assert sorted(ids) == [X, Y]
    (message,) = warned
    assert str(runs / "sweep" / copy_name / RESULT_FILE) in message and str(original / RESULT_FILE) in message
    assert message.startswith(f"skipping {runs / 'sweep' / copy_name}")  # the copy is left out, not the original


def test_a_copy_in_another_recipe_folder_is_counted_once_keeping_the_recipe_s_own(tmp_path):
    runs = tmp_path / "runs"
    write(runs / "sweep" / X, record(X))
    shutil.copytree(runs / "sweep" / X, runs / "a-other" / X)
    ids, warned = loaded(runs)
    assert ids == [X] and len(warned) == 1 and warned[0].startswith(f"skipping {runs / 'a-other' / X}")


def test_one_run_id_in_two_recipes_is_two_runs(tmp_path):
    # run ids do not hash the recipe name: two sweeps sharing a point each trained and recorded it
    runs = tmp_path / "runs"
    write(runs / "data" / X, record(X, name="data"))
    write(runs / "model" / X, record(X, name="model"))
    ids, warned = loaded(runs)
    assert ids == [X, X] and warned == []


def test_a_result_json_symlinked_to_another_run_s_file_counts_once(tmp_path):
    runs = tmp_path / "runs"
    write(runs / "sweep" / X, record(X))
    (runs / "sweep" / Y).mkdir()
    (runs / "sweep" / Y / RESULT_FILE).symlink_to(runs / "sweep" / X / RESULT_FILE)
    assert list(iter_result_files(runs)) == [runs / "sweep" / X / RESULT_FILE]
    ids, _ = loaded(runs)
    assert ids == [X]


def test_a_record_copied_into_another_run_s_folder_is_skipped_with_a_warning(tmp_path):
    runs = tmp_path / "runs"
    write(runs / "sweep" / X, record(X))
    (runs / "sweep" / Y).mkdir()
    shutil.copy(runs / "sweep" / X / RESULT_FILE, runs / "sweep" / Y / RESULT_FILE)
    ids, warned = loaded(runs)
    assert ids == [X]
    assert len(warned) == 1 and str(runs / "sweep" / Y / RESULT_FILE) in warned[0] and f"records run {X}" in warned[0]


def test_a_run_folder_that_is_a_symlink_is_seen_by_load_results_status_and_report(tmp_path):
    runs, scratch = tmp_path / "runs", tmp_path / "scratch"
    write(runs / "sweep" / X, record(X))
    write(scratch / Y, record(Y))
    (runs / "sweep" / Y).symlink_to(scratch / Y, target_is_directory=True)
    assert loaded(runs) == ([X, Y], [])
    # what `report` and `reproduce` read: the plan's run directories only
    assert loaded(runs, run_dirs=[runs / "sweep" / Y]) == ([Y], [])
    assert find_run_dirs(runs) == [runs / "sweep" / X, runs / "sweep" / Y]
    status = status_of_directory(runs, 600)
    assert status.counts()["done"] == 2 and "2 run(s) on disk" in format_status(status)


def test_a_sweep_folder_that_is_a_symlink_is_seen_by_load_results_and_status(tmp_path):
    runs, scratch = tmp_path / "runs", tmp_path / "scratch"
    write(scratch / "sweep" / X, record(X))
    write(scratch / "sweep" / Y, record(Y))
    runs.mkdir()
    (runs / "sweep").symlink_to(scratch / "sweep", target_is_directory=True)
    assert loaded(runs) == ([X, Y], [])
    assert find_run_dirs(runs) == [runs / "sweep" / X, runs / "sweep" / Y]
    assert status_of_directory(runs, 600).counts()["done"] == 2


def test_a_link_to_a_folder_inside_the_tree_adds_nothing(tmp_path):
    runs = tmp_path / "runs"
    write(runs / "sweep" / X, record(X))
    (runs / "latest").symlink_to(runs / "sweep", target_is_directory=True)  # sorts before the real folder
    (runs / "sweep" / Z).symlink_to(runs / "sweep" / X, target_is_directory=True)
    assert list(iter_result_files(runs)) == [runs / "sweep" / X / RESULT_FILE]
    assert loaded(runs) == ([X], [])
    assert find_run_dirs(runs) == [runs / "sweep" / X]


def test_a_symlink_loop_is_not_followed(tmp_path):
    runs = tmp_path / "runs"
    write(runs / "sweep" / X, record(X))
    (runs / "sweep" / "up").symlink_to(tmp_path, target_is_directory=True)  # holds the tree
    (runs / "sweep" / "self").symlink_to(runs / "sweep", target_is_directory=True)
    assert list(iter_result_files(runs)) == [runs / "sweep" / X / RESULT_FILE]
    assert find_run_dirs(runs) == [runs / "sweep" / X]


def test_an_oversized_result_json_is_refused_unread_and_quickly(tmp_path, monkeypatch):
    run_dir = tmp_path / "runs" / "sweep" / X
    run_dir.mkdir(parents=True)
    with open(run_dir / RESULT_FILE, "wb") as handle:  # 110 MB, sparse: no time spent writing it
        handle.write(b'{"run_id": "' + X.encode() + b'", "metrics": {')
        handle.truncate(110_000_000)

    def never(*args, **kwargs):
        raise AssertionError("an oversized result.json was parsed")

    monkeypatch.setattr(RunRecord, "model_validate_json", never)
    started = time.perf_counter()
    result = read_result(run_dir / RESULT_FILE)
    assert time.perf_counter() - started < 0.5
    assert result.kind == "damaged" and result.problem.startswith("result.json is 110 MB; a record is a few KB")
    state = RunDir(run_dir).state()
    assert state.kind == "pending" and "110 MB" in state.damaged
    assert "110 MB" in format_status(status_of_directory(tmp_path / "runs", 600))
    assert loaded(tmp_path / "runs")[0] == []


def test_a_record_with_many_errors_is_named_by_its_first_error_and_their_count(tmp_path):
    losses = ", ".join(f'"k{i}": "x"' for i in range(20_000))
    path = tmp_path / RESULT_FILE
    path.write_text(f'{{"run_id": "{X}", "name": "s", "status": "ok", "test_losses": {{{losses}}}}}')
    assert path.stat().st_size < MAX_RESULT_BYTES
    result = read_result(path)
    assert result.kind == "damaged" and len(result.problem) < 400
    assert result.problem.startswith("ValidationError: ") and "more errors" in result.problem


def test_a_result_just_over_the_limit_is_damaged_and_one_at_it_is_read(tmp_path):
    path = tmp_path / RESULT_FILE
    text = record(X).model_dump_json()
    path.write_text(text + " " * (MAX_RESULT_BYTES - len(text)))
    assert read_result(path).kind == "recorded"
    with open(path, "a") as handle:
        handle.write(" ")
    assert read_result(path).kind == "damaged"
    assert os.path.getsize(path) == MAX_RESULT_BYTES + 1
