"""Several `sweep` processes on one directory: each run once; a killed worker's claim taken over."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from scaling_repro.cli import main
from scaling_repro.config.sweep import load_runs
from scaling_repro.launch.claims import read_claim
from scaling_repro.results import load_results
from tests.helpers.launch_fakes import events, subprocess_env, sweep_dir, write_recipe

# Every test starts sweep processes and waits for claims to go stale: seconds each.
pytestmark = [pytest.mark.usefixtures("fake_runs"), pytest.mark.slow]


def start_sweep(recipe, *flags):
    """Start `scaling-repro sweep` in a child interpreter that runs fake runs."""
    command = [sys.executable, "-m", "scaling_repro", "sweep", str(recipe), *flags]
    return subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(condition, timeout=60.0):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_two_concurrent_sweeps_execute_every_run_exactly_once(tmp_path):
    # gate=2: a run waits until both workers have started one, so the workers truly overlap.
    recipe = write_recipe(tmp_path, (80, 70, 60, 50, 40, 30, 20, 10), params={"gate": 2, "sleep": 0.1})
    workers = [start_sweep(recipe) for _ in range(2)]
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    rows = events(sweep_dir(tmp_path))
    assert Counter(row[0] for row in rows) == Counter(spec.run_id for spec in load_runs(recipe).runs)
    assert {row[1] for row in rows} == {str(worker.pid) for worker in workers}
    assert len(load_results(sweep_dir(tmp_path))) == 8


def test_a_killed_workers_stale_claim_is_taken_over(tmp_path):
    recipe = write_recipe(tmp_path)
    sweep_dir(tmp_path).mkdir(parents=True)
    (sweep_dir(tmp_path) / "hang-10").touch()  # the cheapest run, so the first one started
    hung = next(s for s in load_runs(recipe).runs if s.task.train_examples == 10)
    worker = start_sweep(recipe)
    wait_for(lambda: any(row[0] == hung.run_id for row in events(sweep_dir(tmp_path))))
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert read_claim(hung.run_dir).pids == (worker.pid,)

    (sweep_dir(tmp_path) / "hang-10").unlink()
    assert main(["sweep", str(recipe)]) == 0
    assert Counter(row[0] for row in events(sweep_dir(tmp_path), "end"))[hung.run_id] == 1
    assert len(load_results(sweep_dir(tmp_path))) == 6


def test_a_worker_stopped_longer_than_stale_after_gives_up_its_run_once_continued(tmp_path):
    recipe = write_recipe(tmp_path, (10,), params={"steps": 100, "sleep": 0.05})
    flags = ("--stale-after", "2")  # params.steps: a fake training loop that stops when asked
    stopped = start_sweep(recipe, *flags)
    wait_for(lambda: events(sweep_dir(tmp_path)))
    os.kill(stopped.pid, signal.SIGSTOP)
    time.sleep(3)  # its claim goes stale: no heartbeat for longer than --stale-after
    taker = start_sweep(recipe, *flags)
    wait_for(lambda: len(events(sweep_dir(tmp_path))) == 2)
    os.kill(stopped.pid, signal.SIGCONT)
    stopped_out, taker_out = (worker.communicate(timeout=60)[0] for worker in (stopped, taker))
    assert "1 lost claim" in stopped_out and "1 ok" in taker_out, (stopped_out, taker_out)
    assert [row[1] for row in events(sweep_dir(tmp_path), "stopped")] == [str(stopped.pid)]
    assert [row[1] for row in events(sweep_dir(tmp_path), "end")] == [str(taker.pid)]
