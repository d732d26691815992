"""The study's finetuning stage works in the study folder without making it the working directory."""

from pathlib import Path

import pytest

from scaling_repro.config.sweep import load_runs
from scaling_repro.reproduce.finetune import finetune_runs
from scaling_repro.results import load_results

# The stage runs 2 jobs at once: the first test to do so in a session starts the fork server (seconds).
pytestmark = [pytest.mark.usefixtures("fake_runs"), pytest.mark.slow]

RECIPE = """
name: fake
output_dir: runs
task: {name: synthetic_mt, params: {sleep: 0.01}}
model: {name: tiny-s, path: pretrained/tiny-s}
method: {kind: lora}
sweep: {grid: {task.train_examples: [10, 20, 30]}}
"""


def test_finetuning_writes_into_the_study_folder_records_as_the_recipe_says_and_keeps_the_cwd(tmp_path, monkeypatch):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    specs = [(spec, recipe) for spec in load_runs(recipe).runs]
    study = tmp_path / "study"

    stage = finetune_runs(specs, study, jobs=2, progress=False)

    assert stage.summary.startswith("3 runs trained")
    records = load_results(study / "runs")
    assert sorted(r.run_id for r in records) == sorted(spec.run_id for spec, _ in specs)
    assert {(r.spec["output_dir"], r.spec["model"]["path"]) for r in records} == {("runs", "pretrained/tiny-s")}
    assert Path.cwd() == elsewhere and not any(elsewhere.iterdir())
