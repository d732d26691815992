"""`scaling-repro status`: counts, GPU-hours estimate and failures, from a recipe or a directory."""

import socket

import pytest

from scaling_repro.cli import main
from scaling_repro.config.sweep import load_runs
from scaling_repro.launch.claims import claim_file, try_claim
from scaling_repro.launch.order import estimate_cost
from scaling_repro.launch.status import status_of_directory, status_of_specs
from tests.helpers.launch_fakes import sweep_dir, write_recipe


@pytest.fixture
def half_done(tmp_path, fake_runs):
    """10 and 20 done, 30 failed, 40 running (claimed by this process), 50 interrupted, 60 untouched."""
    recipe = write_recipe(tmp_path)
    sweep_dir(tmp_path).mkdir(parents=True)
    (sweep_dir(tmp_path) / "fail-30").touch()
    main(["sweep", str(recipe), "--max-runs", "3"])
    runs = {spec.task.train_examples: spec for spec in load_runs(recipe).runs}
    try_claim(runs[40].run_dir)
    (runs[50].run_dir / "checkpoints").mkdir(parents=True)
    return recipe, runs


def test_status_of_a_recipe_counts_every_run_and_estimates_the_remaining_gpu_hours(half_done):
    recipe, runs = half_done
    status = status_of_specs(list(runs.values()), "fake", stale_after=600)
    assert status.counts() == {"done": 2, "running": 1, "failed": 1, "pending": 2}
    done_hours = sum(runs[n].task.train_examples for n in (10, 20))  # the fake runs n hours on 1 GPU
    assert status.used_gpu_hours() == pytest.approx(done_hours)
    per_cost = done_hours / sum(estimate_cost(runs[n]) for n in (10, 20))
    left = sum(estimate_cost(runs[n]) for n in (40, 50, 60))
    assert status.remaining_gpu_hours() == pytest.approx(per_cost * left)


def test_status_of_a_directory_sees_only_what_is_on_disk(half_done):
    _, runs = half_done
    status = status_of_directory(sweep_dir(half_done[0].parent), stale_after=600)
    assert {r.run_id for r in status.runs} == {runs[n].run_id for n in (10, 20, 30, 40, 50)}
    assert status.counts() == {"done": 2, "running": 1, "failed": 1, "pending": 1}
    assert status.remaining_gpu_hours() is None


def test_status_command_prints_counts_running_runs_and_a_table_of_failures(half_done, capsys):
    recipe, runs = half_done
    assert main(["status", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert "done 2  running 1  failed 1  pending 2 (1 interrupted, will resume)" in out
    running, failures = out.split("running:")[1].split("failures")
    assert runs[40].run_id in running and socket.gethostname() in running
    assert runs[30].run_id in failures and "RuntimeError: fake failure" in failures


def test_status_command_on_a_directory_says_pending_runs_are_unknown(half_done, capsys):
    assert main(["status", str(sweep_dir(half_done[0].parent))]) == 0
    assert "runs never started are not on disk" in capsys.readouterr().out


def test_status_of_a_missing_path_exits_2(tmp_path, capsys):
    assert main(["status", str(tmp_path / "nope")]) == 2
    assert "no such recipe file or results directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text",
    ['{"state": "held", "host": "%s", "pids": "12x", "started_at": "s", "token": "t"}', "[1, 2]", "{garbled"],
    ids=["wrong-type", "list", "garbled"],
)
def test_status_names_a_damaged_claim_file_and_when_the_run_is_taken_over(tmp_path, capsys, text):
    recipe = write_recipe(tmp_path, (10,))
    path = claim_file(load_runs(recipe).runs[0].run_dir, 0)
    path.parent.mkdir(parents=True)
    path.write_text(text.replace("%s", socket.gethostname()))
    assert main(["status", str(recipe)]) == 0
    out, err = capsys.readouterr()
    assert "running 1" in out and f"damaged claim file {path}" in out and "? pid ?" not in out
    assert f"{path}: damaged claim file" in err and "then it is taken over" in err
