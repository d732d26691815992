"""Where a study's finetuning runs execute: one run per GPU, torchrun over several GPUs for a
run that asks for them (holding them all), or Slurm array jobs submitted from the study folder."""

import os
import threading
import time
from pathlib import Path

import pytest

from scaling_repro.errors import UserError
from scaling_repro.launch import slurm
from scaling_repro.launch.execute import RunOutcome
from scaling_repro.reproduce import finetune
from scaling_repro.reproduce.finetune import Execution, GpuRunner, _GpuLease, check_gpus
from tests.helpers.factories import build_run_spec


def spec(gpus: int = 1, examples: int = 10):
    return build_run_spec(output_dir="runs", launch={"gpus_per_node": gpus}, task={"train_examples": examples})


def test_a_run_asking_for_more_gpus_than_listed_is_refused_before_anything_starts():
    with pytest.raises(UserError, match="launch.gpus_per_node=4 but --gpus lists 2"):
        check_gpus([spec(1), spec(4)], ["0", "1"])


def test_one_gpu_runs_get_their_own_gpu_and_a_wide_run_gets_its_count(monkeypatch, tmp_path):
    seen = []

    class Recording:
        def __init__(self, command, env, cwd=None):
            self.command, self.env = command, env

        def __call__(self, run, claim):
            seen.append((self.command.func.__name__, self.env["CUDA_VISIBLE_DEVICES"]))

    monkeypatch.setattr(finetune, "SubprocessRunner", Recording)
    lease = _GpuLease()
    target = lambda run: finetune.StudyRecipe(tmp_path / "r.yaml")  # noqa: E731
    GpuRunner(target, "1", ("0", "1", "2"), lease, tmp_path)(spec(1), None)
    GpuRunner(target, "0", ("0", "1", "2"), lease, tmp_path)(spec(2), None)
    assert seen == [("python_command", "1"), ("torchrun_command", "0,1")]


def test_a_wide_run_waits_for_running_one_gpu_runs_and_blocks_new_ones():
    lease, events = _GpuLease(), []
    single_running = threading.Event()

    def single(name, hold):
        with lease.single():
            events.append(f"{name} start")
            single_running.set()
            time.sleep(hold)
            events.append(f"{name} end")

    def wide():
        with lease.wide():
            events.append("wide")

    first = threading.Thread(target=single, args=("a", 0.3))
    first.start()
    single_running.wait()
    wide_thread = threading.Thread(target=wide)
    wide_thread.start()
    time.sleep(0.05)
    late = threading.Thread(target=single, args=("b", 0))
    late.start()
    for thread in (first, wide_thread, late):
        thread.join(5)
    assert events == ["a start", "a end", "wide", "b start", "b end"]


def test_the_command_line_s_gpus_and_backend_override_the_plan_s_launch():
    from scaling_repro.config.study_plan import load_plan, plan_path

    plan = load_plan(plan_path("pythia", size="small"))
    assert Execution.of(plan, 2) == Execution("local", 2, ())
    assert Execution.of(plan, 2, ["0", "1"], "slurm").gpus == ("0", "1")
    assert Execution.of(plan, 2, None, "slurm").backend == "slurm"


def test_slurm_submits_one_array_set_per_recipe_from_the_study_folder(monkeypatch, tmp_path):
    submitted = []

    def submit(arrays, target, options, folder, cluster):
        submitted.append((Path(os.getcwd()), target.recipe.name, sum(len(a.specs) for a in arrays), folder, cluster))
        return [object() for a in arrays for _ in a.specs]

    monkeypatch.setattr(slurm, "submit", submit)
    monkeypatch.setattr(slurm, "wait", lambda jobs, specs: [RunOutcome(s.run_id, s.index, "ok", "") for s in specs])
    runs = [(spec(1, 10), Path("a.yaml")), (spec(1, 20), Path("a.yaml")), (spec(1, 30), Path("b.yaml"))]
    stage = finetune.finetune_runs(runs, tmp_path, 1, False, execution=Execution("slurm", cluster="debug"))
    assert sorted(s[1:3] for s in submitted) == [("a.yaml", 2), ("b.yaml", 1)]
    assert all(cwd == tmp_path and folder == tmp_path / "slurm" for cwd, _, _, folder, _ in submitted)
    assert stage.summary.startswith("3 runs trained") and Path.cwd() != tmp_path
