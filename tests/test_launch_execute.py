"""execute_run: the per-run rules every backend shares."""

import launch_fakes
from launch_fakes import write_recipe

from scaling_repro.launch import execute
from scaling_repro.launch.claims import read_claim
from scaling_repro.launch.execute import SweepOptions, execute_run, failed_record, run_state
from scaling_repro.launch.runners import RunInterrupted
from scaling_repro.results import read_record
from scaling_repro.sweep import load_runs


def a_spec(tmp_path, **params):
    return load_runs(write_recipe(tmp_path, (10,), params=params)).runs[0]


def fake(spec, claim):
    launch_fakes.run(spec)


def test_a_run_finished_by_another_worker_before_the_claim_is_not_run_again(tmp_path, monkeypatch):
    spec = a_spec(tmp_path)
    claim = execute.try_claim

    def other_worker_finishes_first(run_dir, *args):
        launch_fakes.run(spec)
        return claim(run_dir, *args)

    monkeypatch.setattr(execute, "try_claim", other_worker_finishes_first)
    ran = []
    outcome = execute_run(spec, lambda s, c: ran.append(s), SweepOptions())
    assert (outcome.kind, ran) == ("skipped", [])


def test_a_run_claimed_by_a_live_worker_is_busy(tmp_path):
    spec = a_spec(tmp_path)
    execute.try_claim(spec.run_dir)
    assert execute_run(spec, fake, SweepOptions()).kind == "busy"
    assert run_state(spec.run_dir).kind == "pending"


def test_a_runner_that_returns_without_a_result_is_recorded_failed(tmp_path):
    spec = a_spec(tmp_path)
    outcome = execute_run(spec, lambda s, c: None, SweepOptions())
    assert outcome.kind == "failed" and "without writing result.json" in outcome.detail
    assert read_record(spec.run_dir).status == f"failed: {outcome.detail}"


def test_an_interrupted_run_records_nothing_and_frees_its_claim(tmp_path):
    spec = a_spec(tmp_path)

    def interrupted(spec, claim):
        raise RunInterrupted("SIGTERM")

    assert execute_run(spec, interrupted, SweepOptions()).kind == "interrupted"
    assert run_state(spec.run_dir).kind == "pending"
    assert read_claim(spec.run_dir).state == "released"


def test_a_finished_run_leaves_only_its_result_and_no_claim(tmp_path):
    spec = a_spec(tmp_path)
    assert execute_run(spec, fake, SweepOptions()).kind == "ok"
    assert read_claim(spec.run_dir) is None


def test_a_failed_record_carries_the_runs_factors(tmp_path):
    spec = load_runs(write_recipe(tmp_path, (30,)), ["method.rank=8", "task.seed=2"]).runs[0]
    record = failed_record(spec, "out of\nmemory", wall_seconds=5.0)
    assert record.status == "failed: out of memory"
    assert (record.run_id, record.method, record.pet_params, record.finetune_examples, record.seed) == (
        spec.run_id, "lora", 8, 30, 2,
    )
