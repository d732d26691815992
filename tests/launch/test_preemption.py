"""SIGTERM to a sweep worker (Slurm preemption, scancel): its run ends interrupted, not failed."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scaling_repro.config.sweep import load_runs
from scaling_repro.launch import preemption
from scaling_repro.launch.claims import read_claim, try_claim
from scaling_repro.launch.execute import SweepOptions
from scaling_repro.launch.runners import RunInterrupted, RunTarget, SubprocessRunner
from scaling_repro.launch.slurm import SlurmTask
from scaling_repro.train.stop import EXIT_PREEMPTED
from tests.helpers.launch_fakes import events, subprocess_env, sweep_dir, write_recipe

# A child that behaves like the torchrun agent on SIGTERM: it notes the signal and exits 1.
AGENT = """
import pathlib, signal, sys, time
def on_sigterm(*_):
    pathlib.Path(sys.argv[1], "got-sigterm").touch()
    sys.exit(1)
signal.signal(signal.SIGTERM, on_sigterm)
pathlib.Path(sys.argv[1], "ready").touch()
time.sleep(60)
"""


def sigterm_to_this_process_once(ready: Path, timeout: float = 60.0) -> None:
    """Send SIGTERM to the test process from a thread once ``ready`` exists."""

    def send() -> None:
        deadline = time.monotonic() + timeout
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=send, daemon=True).start()


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_child_that_exits_1_after_the_forwarded_sigterm_is_interrupted_not_crashed(tmp_path):
    spec = load_runs(write_recipe(tmp_path, (10,))).runs[0]
    claim = try_claim(spec.run_dir)
    runner = SubprocessRunner(lambda s: [sys.executable, "-c", AGENT, str(tmp_path)], poll_seconds=0.05)
    sigterm_to_this_process_once(tmp_path / "ready")
    with preemption.handled(), pytest.raises(RunInterrupted):
        runner(spec, claim)
    assert (tmp_path / "got-sigterm").exists()  # forwarded to the child
    assert not preemption.preempting()  # cleared when the worker's block ends


@pytest.mark.slow
def test_sigterm_to_a_torchrun_sweep_records_its_run_interrupted_releases_it_and_exits_143(tmp_path):
    recipe = write_recipe(tmp_path, (10,), params={"steps": 100000}, extra="launch: {gpus_per_node: 1}\n")
    sweep = subprocess.Popen(
        [sys.executable, "-m", "scaling_repro", "sweep", str(recipe), "--backend", "torchrun"],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: events(sweep_dir(tmp_path)) or sweep.poll() is not None)
    sweep.send_signal(signal.SIGTERM)  # to the worker only: it forwards it to torchrun, which exits 1
    out, err = sweep.communicate(timeout=120)
    spec = load_runs(recipe).runs[0]
    assert sweep.returncode == EXIT_PREEMPTED, err[-2000:]
    assert "1 interrupted" in out and events(sweep_dir(tmp_path), "preempted")  # the run checkpointed
    assert not (spec.run_dir / "result.json").exists()
    assert read_claim(spec.run_dir).state == "released"


def test_sigterm_to_a_slurm_task_records_its_run_interrupted_and_exits_143(tmp_path, fake_runs):
    recipe = write_recipe(tmp_path, (10,), params={"steps": 100000})
    spec = load_runs(recipe).runs[0]
    sigterm_to_this_process_once(sweep_dir(tmp_path) / "executions.log")
    with pytest.raises(SystemExit) as exit_:
        SlurmTask()(spec, RunTarget(recipe), SweepOptions())
    assert exit_.value.code == EXIT_PREEMPTED
    assert events(sweep_dir(tmp_path), "preempted") and not (spec.run_dir / "result.json").exists()
    assert read_claim(spec.run_dir).state == "released"
    assert not preemption.preempting()


def test_the_time_limit_warning_checkpoints_the_slurm_tasks_run_before_submitit_requeues(tmp_path, fake_runs):
    recipe = write_recipe(tmp_path, (10,), params={"steps": 100000})
    spec = load_runs(recipe).runs[0]
    requeued = []

    def submitit_requeue(signum, frame):  # what submitit's USR2 handler does: requeue, then exit
        requeued.append((bool(events(sweep_dir(tmp_path), "preempted")), read_claim(spec.run_dir).state))
        raise SystemExit(-1)

    previous = signal.signal(signal.SIGUSR2, submitit_requeue)
    try:
        ready = sweep_dir(tmp_path) / "executions.log"
        threading.Thread(
            target=lambda: (wait_for(ready.exists), os.kill(os.getpid(), signal.SIGUSR2)), daemon=True
        ).start()
        with pytest.raises(SystemExit) as exit_:
            SlurmTask()(spec, RunTarget(recipe), SweepOptions())
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert exit_.value.code == -1  # submitit's exit, after its requeue
    assert requeued == [(True, "released")]  # the run had checkpointed and let go before the requeue
    assert not (spec.run_dir / "result.json").exists() and not preemption.preempting()
    assert signal.getsignal(signal.SIGUSR2) is previous
