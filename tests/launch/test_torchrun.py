"""The torchrun backend: each run as one torchrun job with launch.gpus_per_node processes."""

from collections import Counter

import pytest

from scaling_repro.cli import main
from scaling_repro.config.sweep import load_runs
from scaling_repro.launch.runners import RunTarget
from scaling_repro.launch.torchrun import AGENT, torchrun_command
from scaling_repro.results import load_results
from tests.helpers.launch_fakes import events, subprocess_env, sweep_dir, write_recipe


def test_torchrun_command_runs_the_spec_with_one_process_per_gpu(tmp_path):
    recipe = write_recipe(tmp_path, (10,), extra="launch: {gpus_per_node: 8}\n")
    spec = load_runs(recipe).runs[0]
    command = torchrun_command(RunTarget(recipe, ("train.max_steps=5",)), spec)
    assert command[1:] == [
        "-c",
        AGENT,
        "--standalone",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "8",
        "-m",
        "scaling_repro",
        "run",
        str(recipe),
        "train.max_steps=5",
        "--run-id",
        spec.run_id,
    ]


@pytest.mark.slow
def test_torchrun_backend_runs_each_run_as_a_torchrun_job(tmp_path, monkeypatch, fake_runs):
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])
    recipe = write_recipe(tmp_path, (10,), extra="launch: {gpus_per_node: 2}\n")
    assert main(["sweep", str(recipe), "--backend", "torchrun"]) == 0
    spec = load_runs(recipe).runs[0]
    assert Counter((row[0], row[3]) for row in events(sweep_dir(tmp_path))) == {
        (spec.run_id, "0"): 1,
        (spec.run_id, "1"): 1,  # one run, ranks 0 and 1
    }
    assert [r.run_id for r in load_results(sweep_dir(tmp_path))] == [spec.run_id]


def test_multi_node_runs_are_refused_with_a_message(tmp_path, capsys):
    recipe = write_recipe(tmp_path, (10,), extra="launch: {nodes: 2}\n")
    assert main(["sweep", str(recipe), "--backend", "torchrun"]) == 2
    assert "launch.nodes=2" in capsys.readouterr().err


def test_the_torchrun_agent_ignores_the_time_limit_warning(tmp_path):
    import subprocess
    import sys

    probe = "import signal; print(signal.getsignal(signal.SIGUSR2) is signal.SIG_IGN)"
    code = AGENT.replace("runpy.run_module('torch.distributed.run', run_name='__main__', alter_sys=True)", probe)
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "True"
