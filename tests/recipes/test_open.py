"""recipes/open: the paper's study on Pythia, with the model-size and pretraining-data axes
built from public checkpoints, on WMT14 En-De and MLSum."""

from functools import cache

import pytest

from scaling_repro.config.sweep import load_runs
from scaling_repro.models.pretrain_tokens import pythia_pretrain_tokens
from tests.helpers.paths import REPO

OPEN = REPO / "recipes" / "open"
PYTHIA = tuple(f"EleutherAI/pythia-{s}" for s in ("160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b"))
TASKS = ("wmt14_en_de", "mlsum")
EXPERIMENTS = [f"{factor}_{m}" for factor in ("model_size", "pretrain_data") for m in ("fmt", "prompt", "lora")]
EXPERIMENTS += ["prompt_length", "lora_rank"]


@cache
def runs_of(task: str, experiment: str):
    return load_runs(OPEN / task / f"{experiment}.yaml").runs


@cache
def paper_runs_of(task: str, experiment: str):
    return load_runs(REPO / "recipes" / "paper" / task / f"{experiment}.yaml").runs


def test_open_recipes_cover_both_tasks_and_every_experiment():
    for task in TASKS:
        assert {p.stem for p in (OPEN / task).glob("[!_]*.yaml")} == set(EXPERIMENTS)
    assert {p.name for p in OPEN.iterdir() if p.is_dir()} == set(TASKS)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("method", ["fmt", "prompt", "lora"])
def test_model_size_axis_is_the_pythia_suite_at_its_final_step(task, method):
    runs = runs_of(task, f"model_size_{method}")
    assert {r.model.name for r in runs} == set(PYTHIA)
    for run in runs:
        assert run.model.revision == "step143000" and run.model.path is None
        assert run.model.pretrain_tokens == pythia_pretrain_tokens(run.model.name, run.model.revision)
        largest = run.model.name == PYTHIA[-1] or run.task.train_examples == max(r.task.train_examples for r in runs)
        assert run.held_out == largest
        if method == "fmt":
            assert run.train.deepspeed == ("zero3" if run.model.name in PYTHIA[-2:] else "zero2")


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("method", ["fmt", "prompt", "lora"])
def test_pretraining_axis_is_one_pythia_model_across_revisions(task, method):
    runs = runs_of(task, f"pretrain_data_{method}")
    assert {r.model.name for r in runs} == {"EleutherAI/pythia-1b"}
    revisions = {r.model.revision for r in runs}
    assert len(revisions) == 5 and "step143000" in revisions
    for run in runs:
        assert run.model.pretrain_tokens == pythia_pretrain_tokens(run.model.name, run.model.revision)
        largest_df = run.task.train_examples == max(r.task.train_examples for r in runs)
        assert run.held_out == (run.model.revision == "step143000" or largest_df)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_open_study_keeps_the_papers_data_sizes_seeds_and_training(task, experiment):
    """Everything but the base model is the paper recipe's: data grid, seeds, method, limits, eval.
    Runtime settings (DeepSpeed, checkpointing, micro-batch...) are sized per model and may differ."""
    from scaling_repro.config.recipe import RUNTIME_SETTINGS

    def setting(run) -> str:
        train = run.train.model_copy(update={key: None for key in RUNTIME_SETTINGS["train"]})
        return " ".join(part.model_dump_json() for part in (run.task, run.method, train, run.eval, run.launch))

    ours = {setting(r) for r in runs_of(task, experiment)}
    papers = {setting(r) for r in paper_runs_of(task, experiment)}
    assert ours == papers


def test_readme_lists_every_open_recipe():
    readme = (OPEN / "README.md").read_text(encoding="utf-8")
    for path in OPEN.rglob("[!_]*.yaml"):
        assert str(path.relative_to(OPEN)) in readme
