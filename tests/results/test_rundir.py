"""RunDir: one owner of a run directory's files; a damaged result.json is one state everywhere;
every record of a run carries the same seed."""

import logging
from types import SimpleNamespace

import pytest

from scaling_repro.config.sweep import load_runs
from scaling_repro.launch.execute import SweepOptions, execute_run
from scaling_repro.launch.status import format_status, status_of_directory, status_of_specs
from scaling_repro.pipeline import base_record
from scaling_repro.results import (
    DAMAGED_RESULT_FILE,
    RESULT_FILE,
    SPEC_FILE,
    RunDir,
    failed_record,
    load_results,
    new_record,
    read_record,
)
from tests.helpers import launch_fakes
from tests.helpers.launch_fakes import write_recipe

GARBLED = b'{"run_id": "0597f6e5b47e", "stat'


def a_spec(tmp_path, overrides=()):
    return load_runs(write_recipe(tmp_path, (10,)), list(overrides)).runs[0]


def damaged_run(tmp_path):
    spec = a_spec(tmp_path)
    spec.run_dir.mkdir(parents=True)
    (spec.run_dir / RESULT_FILE).write_bytes(GARBLED)
    return spec


def test_a_damaged_result_json_is_a_pending_run_that_names_the_problem(tmp_path):
    state = RunDir.of(damaged_run(tmp_path)).state()
    assert (state.kind, state.record) == ("pending", None)
    assert "JSON" in state.damaged


def test_status_counts_a_damaged_result_pending_and_names_it(tmp_path):
    spec = damaged_run(tmp_path)
    for status in (status_of_specs([spec], "recipe", 600), status_of_directory(tmp_path / "runs", 600)):
        assert status.counts() == {"done": 0, "running": 0, "failed": 0, "pending": 1}
        report = format_status(status)
        assert f"1 with a damaged {RESULT_FILE}" in report and spec.run_id in report.split("damaged")[-1]
    assert (spec.run_dir / RESULT_FILE).read_bytes() == GARBLED  # status only reads


def test_a_sweep_worker_sets_a_damaged_result_aside_and_runs_the_run_again(tmp_path, caplog):
    spec = damaged_run(tmp_path)
    with caplog.at_level(logging.WARNING):
        outcome = execute_run(spec, lambda s, claim: launch_fakes.run(s), SweepOptions())
    assert outcome.kind == "ok" and read_record(spec.run_dir).ok
    assert (spec.run_dir / DAMAGED_RESULT_FILE).read_bytes() == GARBLED
    assert str(spec.run_dir / RESULT_FILE) in caplog.text


def test_the_pipeline_sets_a_damaged_result_aside_and_finds_the_run_not_done(tmp_path, caplog):
    spec = damaged_run(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert RunDir.of(spec).finished_record() is None
    assert not (spec.run_dir / RESULT_FILE).exists()
    assert (spec.run_dir / DAMAGED_RESULT_FILE).read_bytes() == GARBLED
    assert str(spec.run_dir / RESULT_FILE) in caplog.text


def test_a_runner_that_writes_a_damaged_result_is_recorded_failed_and_the_file_kept(tmp_path):
    spec = a_spec(tmp_path)
    outcome = execute_run(spec, lambda s, claim: (s.run_dir / RESULT_FILE).write_bytes(GARBLED), SweepOptions())
    assert outcome.kind == "failed" and f"damaged {RESULT_FILE}" in outcome.detail
    assert read_record(spec.run_dir).status == f"failed: {outcome.detail}"
    assert (spec.run_dir / DAMAGED_RESULT_FILE).read_bytes() == GARBLED


def test_a_damaged_result_is_left_out_of_the_results(tmp_path):
    damaged_run(tmp_path)
    with pytest.warns(UserWarning, match="skipping unreadable"):
        assert load_results(tmp_path) == []


def test_failed_and_ok_records_carry_the_data_seed(tmp_path):
    spec = a_spec(tmp_path, ["task.seed=2", "train.seed=5"])
    run = SimpleNamespace(
        spec=spec,
        base=SimpleNamespace(model_params=10, model_params_counted="total", pretrain_tokens=None),
        method=SimpleNamespace(pet_params=4, trainable_params=3, adapted_modules=()),
        task=SimpleNamespace(train=[None] * 10),
    )
    seeds = {base_record(run).seed, failed_record(spec, "oom").seed, new_record(spec, "ok").seed}
    assert seeds == {spec.task.seed} == {2}


def test_the_spec_file_round_trips_into_the_directory_it_is_read_from(tmp_path):
    spec = a_spec(tmp_path)
    RunDir.of(spec).write_spec(spec)
    moved = tmp_path / "elsewhere" / "fake" / spec.run_id
    moved.parent.mkdir(parents=True)
    spec.run_dir.rename(moved)
    read = RunDir(moved).read_spec()
    assert read.run_id == spec.run_id and read.run_dir.resolve() == moved.resolve()
    assert (moved / SPEC_FILE).is_file()
