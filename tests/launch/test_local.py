"""`scaling-repro sweep --backend local`: complete, idempotent, failure-tolerant, ordered."""

import json
import os
import socket
import time
from collections import Counter

import pytest

from scaling_repro.cli import main
from scaling_repro.config.sweep import load_runs
from scaling_repro.launch.claims import claim_file
from scaling_repro.launch.order import estimate_cost
from scaling_repro.results import FAILED_RESULT_FILE, RESULT_FILE, load_results, read_record
from tests.helpers.launch_fakes import EXAMPLES, events, subprocess_env, sweep_dir, write_recipe

pytestmark = pytest.mark.usefixtures("fake_runs")


def sweep(recipe, *flags):
    return main(["sweep", str(recipe), *flags])


def started(tmp_path):
    return Counter(row[0] for row in events(sweep_dir(tmp_path)))


def run_ids(recipe):
    return [spec.run_id for spec in load_runs(recipe).runs]


def test_a_tiny_sweep_completes_with_every_run_executed_once(tmp_path, capsys):
    recipe = write_recipe(tmp_path)
    assert sweep(recipe) == 0
    assert started(tmp_path) == Counter(run_ids(recipe))
    assert len(load_results(sweep_dir(tmp_path))) == len(EXAMPLES)
    assert f"{len(EXAMPLES)} ok" in capsys.readouterr().out


def test_running_a_finished_sweep_again_runs_nothing(tmp_path, capsys):
    recipe = write_recipe(tmp_path)
    sweep(recipe)
    before = started(tmp_path)
    assert sweep(recipe) == 0
    assert started(tmp_path) == before
    assert f"{len(EXAMPLES)} already done" in capsys.readouterr().out


def test_deleting_one_result_reruns_exactly_that_run(tmp_path):
    recipe = write_recipe(tmp_path)
    sweep(recipe)
    spec = load_runs(recipe).runs[2]
    (spec.run_dir / RESULT_FILE).unlink()
    sweep(recipe)
    counts = started(tmp_path)
    assert counts[spec.run_id] == 2
    assert all(n == 1 for run_id, n in counts.items() if run_id != spec.run_id)


def test_a_run_that_raises_is_recorded_failed_and_the_rest_complete(tmp_path, capsys):
    recipe = write_recipe(tmp_path)
    sweep_dir(tmp_path).mkdir(parents=True)
    (sweep_dir(tmp_path) / "fail-30").touch()
    assert sweep(recipe) == 1
    failing = next(s for s in load_runs(recipe).runs if s.task.train_examples == 30)
    record = read_record(failing.run_dir)
    assert record.status.startswith("failed: RuntimeError: fake failure")
    assert len(load_results(sweep_dir(tmp_path))) == len(EXAMPLES) - 1
    out = capsys.readouterr().out
    assert "1 failed" in out and failing.run_id in out.split("failed runs:")[1]


def test_failed_runs_are_skipped_unless_rerun_failed(tmp_path):
    recipe = write_recipe(tmp_path)
    sweep_dir(tmp_path).mkdir(parents=True)
    (sweep_dir(tmp_path) / "fail-30").touch()
    sweep(recipe)
    failing = next(s for s in load_runs(recipe).runs if s.task.train_examples == 30)
    (sweep_dir(tmp_path) / "fail-30").unlink()
    assert sweep(recipe) == 0
    assert started(tmp_path)[failing.run_id] == 1
    assert sweep(recipe, "--rerun-failed") == 0
    assert started(tmp_path)[failing.run_id] == 2
    assert read_record(failing.run_dir).ok
    assert read_record(failing.run_dir / FAILED_RESULT_FILE).status.startswith("failed:")


def test_a_run_failing_again_is_not_retried_twice_in_one_sweep(tmp_path):
    recipe = write_recipe(tmp_path)
    sweep_dir(tmp_path).mkdir(parents=True)
    (sweep_dir(tmp_path) / "fail-30").touch()
    sweep(recipe)
    assert sweep(recipe, "--rerun-failed") == 1
    failing = next(s for s in load_runs(recipe).runs if s.task.train_examples == 30)
    assert started(tmp_path)[failing.run_id] == 2


def test_cheapest_runs_run_first_and_order_recipe_keeps_the_recipe_order(tmp_path):
    recipe = write_recipe(tmp_path)
    sweep(recipe)
    specs = {spec.run_id: spec for spec in load_runs(recipe).runs}
    costs = [estimate_cost(specs[row[0]]) for row in events(sweep_dir(tmp_path))]
    assert costs == sorted(costs) and len(set(costs)) == len(costs)

    other = tmp_path / "other"
    other.mkdir()
    sweep(write_recipe(other), "--order", "recipe")
    assert [row[0] for row in events(sweep_dir(other))] == run_ids(other / "recipe.yaml")


def test_max_runs_starts_at_most_that_many_runs(tmp_path):
    recipe = write_recipe(tmp_path)
    sweep(recipe, "--max-runs", "2")
    assert sum(started(tmp_path).values()) == 2
    sweep(recipe, "--max-runs", "2")
    assert sum(started(tmp_path).values()) == 4


def test_dry_run_lists_the_runs_to_start_and_runs_nothing(tmp_path, capsys):
    recipe = write_recipe(tmp_path)
    sweep(recipe, "--max-runs", "1")
    capsys.readouterr()
    assert sweep(recipe, "--dry-run") == 0
    out = capsys.readouterr().out
    assert sum(started(tmp_path).values()) == 1
    assert f"{len(EXAMPLES) - 1} run(s) to start" in out and "1 done" in out
    assert out.count("--run-id") == len(EXAMPLES) - 1


@pytest.mark.slow
def test_gpus_run_one_subprocess_per_gpu_concurrently(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])
    recipe = write_recipe(tmp_path, EXAMPLES[:4], params={"gate": 2})
    assert sweep(recipe, "--gpus", "0,1") == 0
    rows = events(sweep_dir(tmp_path))
    assert Counter(row[0] for row in rows) == Counter(run_ids(recipe))
    assert {row[2] for row in rows} == {"0", "1"}  # CUDA_VISIBLE_DEVICES of the runs
    assert (load_runs(recipe).runs[0].run_dir / "run.log").exists()


@pytest.mark.slow
def test_a_subprocess_that_dies_without_a_result_is_recorded_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])
    recipe = write_recipe(tmp_path, (20, 10))
    sweep_dir(tmp_path).mkdir(parents=True)
    (sweep_dir(tmp_path) / "crash-20").touch()
    assert sweep(recipe, "--gpus", "0") == 1
    crashed = next(s for s in load_runs(recipe).runs if s.task.train_examples == 20)
    assert read_record(crashed.run_dir).status.startswith("failed: exit status 3")
    assert len(load_results(sweep_dir(tmp_path))) == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--backend", "torchrun", "--gpus", "0"], "only the local backend takes --gpus"),
        (["--gpus", "0,x"], "expected distinct GPU ids"),
        (["--max-runs", "0"], "--max-runs 0: must be at least 1"),
        (["--wait"], "need --backend slurm"),
    ],
)
def test_bad_flags_exit_2_with_a_message(tmp_path, capsys, flags, message):
    assert main(["sweep", str(write_recipe(tmp_path)), *flags]) == 2
    assert message in capsys.readouterr().err


def put_damaged_claim(spec, age_seconds):
    """A claim file of this host with a wrong type (pids a string), last changed that long ago."""
    path = claim_file(spec.run_dir, 0)
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"state": "held", "host": socket.gethostname(), "pids": "12x", "started_at": "s", "token": "t"})
    )
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def test_a_sweep_leaves_a_run_with_a_fresh_damaged_claim_busy_and_names_the_file(tmp_path, capsys):
    recipe = write_recipe(tmp_path, (10,))
    path = put_damaged_claim(load_runs(recipe).runs[0], age_seconds=10)
    assert sweep(recipe) == 0
    out, err = capsys.readouterr()
    assert "1 running in another worker" in out and started(tmp_path) == Counter()
    assert f"{path}: damaged claim file" in err and "then it is taken over" in err


def test_a_sweep_takes_over_a_damaged_claim_after_stale_after_and_says_so(tmp_path, capsys):
    recipe = write_recipe(tmp_path, (10,))
    path = put_damaged_claim(load_runs(recipe).runs[0], age_seconds=100)
    assert sweep(recipe, "--stale-after", "50") == 0
    out, err = capsys.readouterr()
    assert "1 ok" in out and started(tmp_path) == Counter(run_ids(recipe))
    assert f"{path}: damaged claim file" in err and "taking the run over" in err
