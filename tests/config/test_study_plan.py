"""Study plans are data: base models (pretrained or from the hub), finetuning recipes as files or
inline mappings, sizes as plan files that extend one another."""

from pathlib import Path

import pytest

from scaling_repro.config.study_plan import RECIPES_DIR, load_plan, plan_path, size_plans
from scaling_repro.errors import RecipeError, UserError

TINY = RECIPES_DIR / "tiny"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


HUB = "hub_models: [{name: EleutherAI/pythia-160m, revisions: [step143000]}]\nanalysis: {}\n"


def test_a_list_of_recipe_files_is_named_by_their_stems():
    plan = load_plan(TINY / "study.yaml")
    assert list(plan.finetune)[:2] == ["model_size", "pretrain_data"]
    assert plan.finetune["model_size"] == TINY / "model_size.yaml"


def test_an_inline_recipe_has_its_extends_merged_relative_to_the_plan(tmp_path):
    write(tmp_path / "_base.yaml", "name: base\ntask: {name: synthetic_mt}\nmethod: {kind: lora}\n")
    plan = load_plan(
        write(
            tmp_path / "p.yaml",
            f"name: p\n{HUB}finetune:\n  a: {{extends: _base.yaml, name: a, method: {{rank: 8}}}}\n",
        )
    )
    assert plan.finetune["a"] == {"name": "a", "task": {"name": "synthetic_mt"}, "method": {"kind": "lora", "rank": 8}}


def test_a_plan_that_extends_another_drops_a_recipe_set_to_null(tmp_path):
    write(tmp_path / "base.yaml", f"name: p\n{HUB}finetune:\n  a: {{name: a}}\n  b: {{name: b}}\n")
    plan = load_plan(write(tmp_path / "small.yaml", "extends: base.yaml\nfinetune: {b: null}\n"))
    assert list(plan.finetune) == ["a"]


def test_a_plan_needs_a_base_model(tmp_path):
    with pytest.raises(RecipeError, match="names no base model"):
        load_plan(write(tmp_path / "p.yaml", "name: p\nanalysis: {}\nfinetune: {a: {name: a}}\n"))


def test_models_to_pretrain_need_a_pretraining_recipe(tmp_path):
    text = "name: p\nanalysis: {}\nmodels: [{name: tiny-s, token_budget: 10}]\nfinetune: {a: {name: a}}\n"
    with pytest.raises(RecipeError, match="set `pretrain_recipe`"):
        load_plan(write(tmp_path / "p.yaml", text))


def test_a_hub_model_listed_twice_is_an_error(tmp_path):
    text = (
        "name: p\nanalysis: {}\nfinetune: {a: {name: a}}\nhub_models:\n"
        "  - {name: m/x, revisions: [a]}\n  - {name: m/x, revisions: [b]}\n"
    )
    with pytest.raises(RecipeError, match="hub_models: a model is listed twice"):
        load_plan(write(tmp_path / "p.yaml", text))


def test_a_missing_recipe_file_is_named(tmp_path):
    with pytest.raises(RecipeError, match="finetune.gone: recipe .*gone.yaml does not exist"):
        load_plan(write(tmp_path / "p.yaml", f"name: p\n{HUB}finetune: [gone.yaml]\n"))


@pytest.mark.parametrize(
    ("size", "quick", "name"), [(None, False, "small"), ("full", False, "full"), (None, True, "quick")]
)
def test_a_sized_study_reads_the_plan_of_its_size(size, quick, name):
    assert plan_path("pythia", quick, size=size) == RECIPES_DIR / "open" / f"pythia_{name}.yaml"


def test_the_tiny_study_has_no_sizes():
    with pytest.raises(UserError, match="--size small: study 'tiny' has no sizes"):
        plan_path("tiny", size="small")


def test_an_unknown_size_names_the_allowed_ones():
    with pytest.raises(UserError, match="--size huge: unknown size; allowed: small, medium, full"):
        plan_path("pythia", size="huge")


def test_every_size_of_a_sized_plan_is_found_beside_it():
    assert set(size_plans(RECIPES_DIR / "open" / "pythia_medium.yaml")) == {"small", "medium", "full"}
    assert size_plans(TINY / "study.yaml") == {}
