"""Ctrl-C during `sweep --jobs 2`: exit status 130, every claim released, no temporary claim
file left, and running the sweep again finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from scaling_repro.config.sweep import load_runs
from scaling_repro.launch.claims import read_claim
from scaling_repro.results import load_results
from tests.helpers.launch_fakes import events, subprocess_env, sweep_dir, write_recipe

pytestmark = pytest.mark.slow  # two sweeps of real processes: about 20 s


def sweep(recipe) -> subprocess.Popen:
    """`scaling-repro sweep RECIPE --jobs 2` in its own process group, as a terminal runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "scaling_repro", "sweep", str(recipe), "--jobs", "2"],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # a shell's background job (`cmd &`) ignores SIGINT, and a child inherits that: a terminal's does not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_ctrl_c_during_a_two_job_sweep_exits_130_releases_its_claims_and_a_rerun_finishes(tmp_path):
    recipe = write_recipe(tmp_path, (20, 10), params={"steps": 120, "sleep": 0.05})  # ~6 s a run
    first = sweep(recipe)
    deadline = time.monotonic() + 120
    while len(events(sweep_dir(tmp_path))) < 2:
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-2000:]
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
    out, err = first.communicate(timeout=120)
    assert first.returncode == 130, err[-2000:]
    specs = load_runs(recipe).runs
    assert [read_claim(spec.run_dir).state for spec in specs] == ["released", "released"]
    assert not list(sweep_dir(tmp_path).rglob("*.tmp"))

    second = sweep(recipe)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err[-2000:]
    assert len(load_results(sweep_dir(tmp_path))) == 2 and "2 ok" in out
