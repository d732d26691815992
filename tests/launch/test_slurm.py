"""The Slurm backend: a dry-run snapshot of the submission, a real one on submitit's local executor,
the submitted resources (fake sbatch), and a requeued task's claim."""

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from scaling_repro.cli import main
from scaling_repro.config.sweep import load_runs
from scaling_repro.launch import slurm
from scaling_repro.launch.claims import CLAIMS_DIR
from scaling_repro.launch.execute import SweepOptions
from scaling_repro.launch.runners import RunTarget
from scaling_repro.results import load_results, read_record
from tests.helpers.launch_fakes import events, subprocess_env, sweep_dir, write_recipe
from tests.helpers.paths import SNAPSHOTS

SNAPSHOT = SNAPSHOTS / "slurm_dry_run.txt"
CLUSTER_RECIPE = """\
name: fake
output_dir: runs
task: {name: synthetic_mt}
model: {name: tiny-s}
method: {kind: lora}
launch: {partition: gpu, account: lab, time_minutes: 120, cpus_per_task: 8, mem_gb: 64, slurm_extra: {qos: high}}
sweep:
  grid:
    task.train_examples: [1000, 100]
  zip:
    - model.name: [tiny-s, paper-1b]
      launch.gpus_per_node: [1, 4]
"""


def test_slurm_dry_run_prints_the_array_jobs_it_would_submit(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("recipe.yaml").write_text(CLUSTER_RECIPE)
    assert main(["sweep", "recipe.yaml", "--backend", "slurm", "--array-parallelism", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out.replace(str(tmp_path.resolve()), "<tmp>")
    for spec in load_runs("recipe.yaml").runs:  # run ids change with the recipe schema; indices do not
        out = out.replace(spec.run_id, f"RUN{spec.index:09d}")
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(out)
    assert out == SNAPSHOT.read_text()
    assert not Path("runs/fake/slurm").exists()


def sweep_cli(*args: str) -> subprocess.CompletedProcess:
    # A separate process that runs fake runs (so do its submitit tasks): submitit's local executor
    # must not share the test process's stdout/stderr capture (absl.logging, imported by other
    # tests, breaks it there).
    return subprocess.run(
        [sys.executable, "-m", "scaling_repro", "sweep", *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_slurm_backend_runs_an_array_job_on_submitits_local_executor(tmp_path):
    recipe = write_recipe(tmp_path, (40, 30, 20, 10))
    sweep_dir(tmp_path).mkdir(parents=True)
    (sweep_dir(tmp_path) / "fail-30").touch()
    flags = ["--backend", "slurm", "--submitit-cluster", "local", "--wait"]
    first = sweep_cli(str(recipe), *flags)
    assert first.returncode == 1, first.stderr
    runs = load_runs(recipe).runs
    assert Counter(row[0] for row in events(sweep_dir(tmp_path))) == Counter(s.run_id for s in runs)
    assert len(load_results(sweep_dir(tmp_path))) == 3
    failed = next(s for s in runs if s.task.train_examples == 30)
    assert read_record(failed.run_dir).status.startswith("failed: RuntimeError: fake failure")
    assert re.search(r"submitted 4 run\(s\) as job\(s\) \d+", first.stdout) and "3 ok, 1 failed" in first.stdout

    second = sweep_cli(str(recipe), *flags)  # nothing left to submit
    assert second.returncode == 0, second.stderr
    assert "3 already done, 1 failed earlier" in second.stdout


@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch):
    """Put ``sbatch`` and ``srun`` stand-ins on PATH: submitit submits job 4242 and runs nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sbatch", "srun"):
        (bin_dir / name).write_text("#!/bin/sh\necho 'Submitted batch job 4242'\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def submit_to_fake_slurm(tmp_path, extra: str) -> list:
    recipe = write_recipe(tmp_path, (20, 10), extra=extra)
    arrays = slurm.plan_arrays(load_runs(recipe).runs)
    return slurm.submit(arrays, RunTarget(recipe), SweepOptions(), tmp_path / "slurm", cluster="slurm")


def test_an_unset_cpus_per_task_asks_slurm_for_8_cpus_per_gpu(tmp_path, fake_sbatch):
    submit_to_fake_slurm(tmp_path, "launch: {gpus_per_node: 8}\n")
    script = (tmp_path / "slurm" / "4242" / "4242_submission.sh").read_text()
    assert "#SBATCH --cpus-per-task=64\n" in script and "--mem" not in script


def test_submitted_tasks_may_be_requeued_30_times_after_their_time_limit(tmp_path, fake_sbatch):
    jobs = submit_to_fake_slurm(tmp_path, "launch: {gpus_per_node: 8}\n")
    assert [job.submission()._timeout_countdown for job in jobs] == [30, 30]


def test_a_run_needing_many_time_limits_may_be_requeued_three_times_as_often(tmp_path, monkeypatch):
    recipe = write_recipe(tmp_path, (20, 10), extra="launch: {gpus_per_node: 8, time_minutes: 60}\n")
    monkeypatch.setattr(slurm, "gpu_hours", lambda spec: 8 * spec.task.train_examples)  # 20 and 10 hours
    assert slurm.plan_arrays(load_runs(recipe).runs)[0].max_timeouts == 60  # 3 x 20 limits of one hour


def test_the_slurm_job_id_of_a_task_is_the_one_slurm_keeps_across_requeues():
    assert slurm.slurm_job_id({"SLURM_JOB_ID": "95", "SLURM_ARRAY_JOB_ID": "90", "SLURM_ARRAY_TASK_ID": "5"}) == "90_5"
    assert slurm.slurm_job_id({"SLURM_JOB_ID": "95"}) == "95"
    assert slurm.slurm_job_id({}) == ""


def test_a_requeued_slurm_task_takes_over_the_claim_its_previous_attempt_left_on_another_host(
    tmp_path, monkeypatch, fake_runs
):
    recipe = write_recipe(tmp_path, (10,))
    spec = load_runs(recipe).runs[0]
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "90")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "5")
    left = {
        "state": "held",
        "host": "other-node",
        "pids": [1],
        "started_at": "2024-01-01T00:00:00+00:00",
        "token": "previous",
        "owner": "slurm job 90_5",
        "job": "90_5",
    }
    (spec.run_dir / CLAIMS_DIR).mkdir(parents=True)
    (spec.run_dir / CLAIMS_DIR / "0.json").write_text(json.dumps(left))  # fresh heartbeat: not stale
    outcome = slurm.SlurmTask()(spec, RunTarget(recipe), SweepOptions())
    assert outcome.kind == "ok"
