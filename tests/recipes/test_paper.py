"""recipes/paper expands to the paper's experiments: Table 1b's grid and the Appendix settings.

The expected grids are rebuilt here from the numbers of Table 1b (PAPER.md "Setup"); a recipe
passes when its expanded runs are exactly that grid (x factor value, finetuning data size,
seed, held-out mark), with the paper's optimizer, batch, limits and DeepSpeed stage per size.
"""

from functools import cache
from pathlib import Path

import pytest

from scaling_repro.config.recipe import pet_size
from scaling_repro.config.sweep import load_runs
from tests.helpers.paths import REPO

PAPER = REPO / "recipes" / "paper"

# Table 1b.
MODEL_SIZES = ("paper-1b", "paper-2b", "paper-4b", "paper-8b", "paper-16b")
PRETRAIN_BILLIONS = {"en_de": (84, 126, 167, 209, 283), "en_zh": (84, 105, 126, 147, 167, 206)}
PROMPT_LENGTHS = (50, 100, 150, 200, 300, 400, 600)
LORA_RANKS = (4, 8, 16, 32, 48, 64, 128)
PET_DATA = (8_000, *(k * 10_000 for k in range(1, 11)))
FMT_DATA = {
    "wmt14_en_de": (100_000, *(k * 500_000 for k in range(1, 10))),
    "wmt19_en_zh": (*(k * 1_000_000 for k in range(1, 6)), 10_000_000, 15_000_000, 20_000_000, 25_000_000),
    "mlsum": tuple(k * 100_000 for k in range(1, 10)),
}
SEEDS = (0, 1, 2)
TASK_LLM = {"wmt14_en_de": "en_de", "wmt19_en_zh": "en_zh", "mlsum": "en_de"}
TRANSLATION = {"wmt14_en_de", "wmt19_en_zh"}
# Appendix: LR and batch per method (method defaults and recipes must both say so).
METHOD_SETTINGS = {"full": (1e-3, 128), "prompt": (3e-1, 16), "lora": (1e-2, 16)}
METHOD_FILES = {"full": "fmt", "prompt": "prompt", "lora": "lora"}


def data_sizes(task: str, method: str) -> tuple[int, ...]:
    return FMT_DATA[task] if method == "full" else PET_DATA


def tokens(billions: int) -> int:
    return billions * 10**9


def final_tokens(task: str) -> int:
    return tokens(PRETRAIN_BILLIONS[TASK_LLM[task]][-1])


@cache
def runs_of(relative: str):
    return load_runs(PAPER / relative).runs


def grid(factor_values, data, held_x) -> set[tuple]:
    """Expected (x, Df, seed, held_out) points: held out = the largest x or the largest Df."""
    return {(x, df, seed, x == held_x or df == max(data)) for x in factor_values for df in data for seed in SEEDS}


def observed(runs, x_of) -> list[tuple]:
    return [(x_of(r), r.task.train_examples, r.task.seed, r.held_out) for r in runs]


EXPERIMENTS = [
    (task, factor, method)
    for task in FMT_DATA
    for method in ("full", "prompt", "lora")
    for factor in ("model_size", "pretrain_data")
] + [(task, "pet_size", method) for task in FMT_DATA for method in ("prompt", "lora")]


def recipe_path(task: str, factor: str, method: str) -> str:
    if factor == "pet_size":
        return f"{task}/{'prompt_length' if method == 'prompt' else 'lora_rank'}.yaml"
    return f"{task}/{factor}_{METHOD_FILES[method]}.yaml"


def test_each_task_folder_holds_exactly_the_experiments_and_a_few_shot_baseline():
    for task in FMT_DATA:
        found = {p.name for p in (PAPER / task).glob("[!_]*.yaml")}
        expected = {Path(recipe_path(t, f, m)).name for t, f, m in EXPERIMENTS if t == task}
        assert found == expected | {"fewshot_baseline.yaml"}


@pytest.mark.parametrize("task, factor, method", EXPERIMENTS, ids=lambda v: str(v))
def test_expanded_grid_is_table_1b(task, factor, method):
    runs = runs_of(recipe_path(task, factor, method))
    data = data_sizes(task, method)
    if factor == "model_size":
        expected = grid(MODEL_SIZES, data, "paper-16b")
        points = observed(runs, lambda r: r.model.name)
    elif factor == "pretrain_data":
        checkpoints = [tokens(b) for b in PRETRAIN_BILLIONS[TASK_LLM[task]]]
        expected = grid(checkpoints, data, max(checkpoints))
        points = observed(runs, lambda r: r.model.pretrain_tokens)
    else:
        sizes = PROMPT_LENGTHS if method == "prompt" else LORA_RANKS
        expected = grid(sizes, data, max(sizes))
        points = observed(runs, lambda r: pet_size(r.method))
    assert len(points) == len(set(points)) == len(expected)
    assert set(points) == expected


@pytest.mark.parametrize("task, factor, method", EXPERIMENTS, ids=lambda v: str(v))
def test_paper_optimization_settings(task, factor, method):
    lr, batch = METHOD_SETTINGS[method]
    max_steps = 300_000 if (task, method) == ("wmt19_en_zh", "full") else 200_000
    for run in runs_of(recipe_path(task, factor, method)):
        assert run.task.name == task and run.method.kind == method
        assert (run.method.lr, run.method.batch_size) == (lr, batch)
        assert (run.train.optimizer, run.train.schedule) == ("adafactor", "cosine")
        assert (run.train.max_steps, run.train.max_epochs) == (max_steps, 100)
        assert run.train.early_stopping_patience is None  # best checkpoint by dev PPL over the whole run
        if factor != "pet_size" and method == "prompt":
            assert run.method.prompt_length == 100
        if factor != "pet_size" and method == "lora":
            assert run.method.rank == 4


@pytest.mark.parametrize("task, factor, method", EXPERIMENTS, ids=lambda v: str(v))
def test_base_checkpoints_deepspeed_and_gpus_per_model_size(task, factor, method):
    llm = TASK_LLM[task]
    for run in runs_of(recipe_path(task, factor, method)):
        if factor != "model_size":
            assert run.model.name == "paper-1b"
        assert run.model.path == f"pretrained/{llm}/{run.model.name}"
        assert run.model.revision == f"tokens-{run.model.pretrain_tokens}"
        if factor != "pretrain_data":
            assert run.model.pretrain_tokens == final_tokens(task)
        if method == "full":
            large = run.model.name in ("paper-8b", "paper-16b")
            assert run.train.deepspeed == ("zero3" if large else None)  # 1B-4B: DDP, factored Adafactor
            assert run.launch.gpus_per_node == 8
        else:
            assert run.train.deepspeed is None and run.launch.gpus_per_node == 1


@pytest.mark.parametrize("task, factor, method", EXPERIMENTS, ids=lambda v: str(v))
def test_zero_shot_and_few_shot_where_the_paper_reports_them(task, factor, method):
    five_shot = [1, 5] if task in TRANSLATION else [1]
    for run in runs_of(recipe_path(task, factor, method)):
        assert run.eval.generate
        assert run.eval.zero_shot == (factor == "model_size" and task in TRANSLATION)  # Fig. 6
        assert run.eval.few_shot == ([] if factor == "pet_size" else five_shot)  # Figs. 11-14


@pytest.mark.parametrize("task", sorted(FMT_DATA))
def test_few_shot_baseline_evaluates_every_base_checkpoint_untrained(task):
    runs = runs_of(f"{task}/fewshot_baseline.yaml")
    checkpoints = PRETRAIN_BILLIONS[TASK_LLM[task]]
    expected = {(name, final_tokens(task)) for name in MODEL_SIZES}
    expected |= {("paper-1b", tokens(b)) for b in checkpoints[:-1]}
    assert {(r.model.name, r.model.pretrain_tokens) for r in runs} == expected
    assert len(runs) == len(expected)
    for run in runs:
        assert run.train.max_steps == 0 and run.train.deepspeed is None
        assert run.eval.zero_shot == (task in TRANSLATION)
        assert run.eval.few_shot == ([1, 5] if task in TRANSLATION else [1])


def test_pretraining_recipes_export_the_table_1b_checkpoints_of_every_size():
    from scaling_repro.pretrain.recipe import load_pretrain_recipe

    for llm, billions in PRETRAIN_BILLIONS.items():
        small = load_pretrain_recipe(PAPER / "pretrain" / f"{llm}.yaml")
        large = load_pretrain_recipe(PAPER / "pretrain" / f"{llm}_8b_16b.yaml")
        assert [*small.models, *large.models] == list(MODEL_SIZES)
        for recipe in (small, large):
            assert recipe.export_tokens == [tokens(b) for b in billions]
            assert recipe.output_dir == f"pretrained/{llm}"
            assert (recipe.train.optimizer, recipe.train.schedule, recipe.lr) == ("adafactor", "cosine", 1e-2)
            assert recipe.train.min_lr_ratio == pytest.approx(0.1)  # cosine 0.01 -> 0.001
        assert (small.train.deepspeed, large.train.deepspeed) == ("zero2", "zero3")


def test_readme_lists_every_paper_recipe():
    readme = (PAPER / "README.md").read_text(encoding="utf-8")
    for path in PAPER.rglob("[!_]*.yaml"):
        assert str(path.relative_to(PAPER)) in readme
