"""`scaling-repro sweep --jobs N`: N runs at once on the CPU, each in a one-thread child process."""

import os
from collections import Counter

import pytest

from scaling_repro.cli import main
from scaling_repro.config.sweep import load_runs
from scaling_repro.launch.local import ForkedRunner, cpu_runners
from scaling_repro.results import load_results, read_record
from tests.helpers.launch_fakes import events, sweep_dir, write_recipe

pytestmark = pytest.mark.usefixtures("fake_runs")


@pytest.mark.slow
def test_jobs_run_every_run_once_in_concurrent_child_processes(tmp_path):
    # gate=2: a run waits until two processes have started one, so the jobs really overlap.
    recipe = write_recipe(tmp_path, (60, 50, 40, 30, 20, 10), params={"gate": 2, "sleep": 0.05})
    assert main(["sweep", str(recipe), "--jobs", "2"]) == 0
    rows = events(sweep_dir(tmp_path))
    assert Counter(row[0] for row in rows) == Counter(spec.run_id for spec in load_runs(recipe).runs)
    pids = {row[1] for row in rows}
    assert len(pids) == 6 and str(os.getpid()) not in pids  # a fresh child per run
    assert len(load_results(sweep_dir(tmp_path))) == 6


@pytest.mark.slow
def test_each_job_child_uses_one_torch_thread(tmp_path):
    recipe = write_recipe(tmp_path, (20, 10), params={"record_threads": True})
    assert main(["sweep", str(recipe), "--jobs", "2"]) == 0
    counts = [p.read_text() for p in sweep_dir(tmp_path).glob("threads-*")]
    assert counts == ["1", "1"]


@pytest.mark.slow
def test_a_crashing_child_is_recorded_failed_and_the_other_runs_complete(tmp_path, capsys):
    recipe = write_recipe(tmp_path, (30, 20, 10))
    sweep_dir(tmp_path).mkdir(parents=True)
    (sweep_dir(tmp_path) / "crash-20").touch()
    assert main(["sweep", str(recipe), "--jobs", "2"]) == 1
    crashed = next(s for s in load_runs(recipe).runs if s.task.train_examples == 20)
    assert read_record(crashed.run_dir).status.startswith("failed: exit status 3")
    assert len(load_results(sweep_dir(tmp_path))) == 2
    assert "1 failed" in capsys.readouterr().out


def test_cpu_runners_fork_from_a_preloaded_server_on_posix():
    runners = cpu_runners(lambda spec: None, jobs=3)
    assert len(runners) == 3 and all(isinstance(r, ForkedRunner) and r.threads == 1 for r in runners)


def test_jobs_must_be_positive_and_only_for_the_local_cpu_backend(tmp_path, capsys):
    recipe = write_recipe(tmp_path)
    assert main(["sweep", str(recipe), "--jobs", "0"]) == 2
    assert main(["sweep", str(recipe), "--jobs", "2", "--gpus", "0"]) == 2
    err = capsys.readouterr().err
    assert "--jobs 0: must be at least 1" in err and "only the local backend without --gpus" in err
