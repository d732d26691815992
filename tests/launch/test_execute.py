"""execute_run: the per-run rules every backend shares."""

import json
import sys
import threading
import time

from scaling_repro.config.sweep import load_runs
from scaling_repro.fileio import atomic_write_text
from scaling_repro.launch import execute
from scaling_repro.launch.claims import claim_file, pid_alive, read_claim
from scaling_repro.launch.execute import RunOutcome, SweepOptions, execute_run, format_summary
from scaling_repro.launch.runners import InProcessRunner, RunInterrupted, RunTarget, SubprocessRunner
from scaling_repro.results import RunDir, failed_record, read_record
from tests.helpers import launch_fakes
from tests.helpers.launch_fakes import events, write_recipe


def a_spec(tmp_path, **params):
    return load_runs(write_recipe(tmp_path, (10,), params=params)).runs[0]


def fake(spec, claim):
    launch_fakes.run(spec)


def test_a_run_finished_by_another_worker_before_the_claim_is_not_run_again(tmp_path, monkeypatch):
    spec = a_spec(tmp_path)
    claim = execute.try_claim

    def other_worker_finishes_first(run_dir, *args, **kwargs):
        launch_fakes.run(spec)
        return claim(run_dir, *args, **kwargs)

    monkeypatch.setattr(execute, "try_claim", other_worker_finishes_first)
    ran = []
    outcome = execute_run(spec, lambda s, c: ran.append(s), SweepOptions())
    assert (outcome.kind, ran) == ("skipped", [])


def test_a_run_claimed_by_a_live_worker_is_busy(tmp_path):
    spec = a_spec(tmp_path)
    execute.try_claim(spec.run_dir)
    assert execute_run(spec, fake, SweepOptions()).kind == "busy"
    assert RunDir(spec.run_dir).state().kind == "pending"


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
    assert RunDir(spec.run_dir).state().kind == "pending"
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
        spec.run_id,
        "lora",
        8,
        30,
        2,
    )


def take_over_when(spec, ready):
    """Start a thread that, once ``ready()``, rewrites the run's claim to another owner: what a
    worker stopped (SIGSTOP) for longer than --stale-after finds when it is continued."""

    def steal():
        deadline = time.time() + 30
        while not ready() and time.time() < deadline:
            time.sleep(0.01)
        info = read_claim(spec.run_dir)
        atomic_write_text(
            claim_file(spec.run_dir, info.generation),
            json.dumps(
                {
                    "state": "held",
                    "host": "other-host",
                    "pids": [1],
                    "started_at": "now",
                    "token": "thief",
                }
            ),
        )

    thread = threading.Thread(target=steal)
    thread.start()
    return thread


def test_an_in_process_run_whose_claim_is_taken_over_stops_and_records_nothing(tmp_path, fake_runs):
    spec = a_spec(tmp_path, steps=500, sleep=0.02)
    thief = take_over_when(spec, lambda: events(spec.run_dir.parent))
    runner = InProcessRunner(RunTarget(tmp_path / "recipe.yaml"))  # params.steps: fake steps
    outcome = execute_run(spec, runner, SweepOptions(stale_after=0.2))
    thief.join()
    assert outcome.kind == "lost" and outcome.seconds < 5
    assert events(spec.run_dir.parent, "stopped") and not events(spec.run_dir.parent, "end")
    assert RunDir(spec.run_dir).state().kind == "pending"  # no result, and no failed record either
    assert read_claim(spec.run_dir).token == "thief"


def test_a_child_process_run_whose_claim_is_taken_over_is_killed_and_reported_lost(tmp_path):
    spec = a_spec(tmp_path)
    child_pids = []

    def child_started():
        info = read_claim(spec.run_dir)
        child_pids[:] = info.pids[1:] if info is not None else ()
        return bool(child_pids)

    thief = take_over_when(spec, child_started)
    runner = SubprocessRunner(lambda s: [sys.executable, "-c", "import time; time.sleep(60)"], poll_seconds=0.05)
    outcome = execute_run(spec, runner, SweepOptions(stale_after=0.2))
    thief.join()
    assert outcome.kind == "lost" and outcome.seconds < 30
    assert child_pids and not pid_alive(child_pids[0])
    assert RunDir(spec.run_dir).state().kind == "pending"
    assert read_claim(spec.run_dir).token == "thief"


def test_the_summary_counts_a_lost_claim_apart_from_failures():
    summary = format_summary([RunOutcome("abc", 0, "lost", "its claim was taken over")])
    assert "1 lost claim" in summary and "failed" not in summary
