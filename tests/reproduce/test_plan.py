"""The shipped tiny study plans: consistent with their recipes, and the grid the issue asks for."""

from collections import defaultdict
from pathlib import Path

import pytest

from scaling_repro.config.recipe import pet_size
from scaling_repro.config.study_plan import RECIPES_DIR, load_plan, plan_path
from scaling_repro.errors import RecipeError, UserError
from scaling_repro.models.configs import architecture_counts
from scaling_repro.reproduce.stages import load_finetune_specs

TINY = RECIPES_DIR / "tiny"


@pytest.fixture(scope="module", params=[False, True], ids=["default", "quick"])
def plan_and_specs(request):
    plan = load_plan(plan_path("tiny", quick=request.param))
    return plan, [spec for spec, _ in load_finetune_specs(plan)]


def test_every_finetuning_run_uses_a_checkpoint_the_plan_pretrains(plan_and_specs):
    plan, specs = plan_and_specs  # load_finetune_specs raises otherwise; check it found runs
    assert len(specs) > 50
    revisions = {(s.model.name, s.model.revision) for s in specs}
    assert revisions == {(m.name, r) for m in plan.models for r in m.revisions}


def test_default_plan_spans_the_issue_s_grid():
    plan = load_plan(plan_path("tiny"))
    specs = [spec for spec, _ in load_finetune_specs(plan)]
    params = {m.name: architecture_counts(m.name).non_embedding for m in plan.models}
    assert len(params) >= 4 and max(params.values()) >= 10 * min(params.values())
    assert max(len(m.revisions) for m in plan.models) >= 3  # pretraining-data axis
    data_sizes = defaultdict(set)
    pet_sizes = defaultdict(set)
    for s in specs:
        data_sizes[(s.model.name, s.model.revision, s.method.kind)].add(s.task.train_examples)
        pet_sizes[s.method.kind].add(pet_size(s.method))
    finals = {(m.name, m.revisions[-1]) for m in plan.models}
    for name, revision in finals:
        for kind in ("full", "prompt", "lora"):
            assert len(data_sizes[(name, revision, kind)]) >= 5, (name, kind)
    assert len(pet_sizes["prompt"]) >= 3 and len(pet_sizes["lora"]) >= 3


def test_a_method_setting_is_identical_wherever_it_appears(plan_and_specs):
    _, specs = plan_and_specs
    by_setting = defaultdict(set)
    for s in specs:
        if s.train.max_steps == 0:  # un-finetuned baselines
            continue
        pet = pet_size(s.method)
        by_setting[(s.method.kind, pet)].add((s.method.model_dump_json(), s.train.model_dump_json(), s.eval.batch_size))
    assert all(len(v) == 1 for v in by_setting.values()), {k: len(v) for k, v in by_setting.items()}


def write_plan(tmp_path: Path, finetune: str, models: str) -> Path:
    (tmp_path / "ft.yaml").write_text(finetune)
    plan = tmp_path / "study.yaml"
    plan.write_text(
        f"name: t\npretrain_recipe: {TINY / 'pretrain.yaml'}\nmodels: {models}\nfinetune: [ft.yaml]\nanalysis: {{}}\n"
    )
    return plan


FT = (
    f"extends: {TINY / 'base.yaml'}\nname: t-ft\n"
    "model: {name: tiny-s, path: pretrained/tiny-s, revision: tokens-%d}\n"
)


def test_a_recipe_needing_a_checkpoint_the_plan_does_not_make_is_an_error(tmp_path):
    plan = load_plan(write_plan(tmp_path, FT % 999, "[{name: tiny-s, token_budget: 1000}]"))
    with pytest.raises(RecipeError, match=r"pretrained/tiny-s@tokens-999 is not a base model of the study plan"):
        load_finetune_specs(plan)


def test_task_params_must_match_the_pretraining_corpus(tmp_path):
    text = FT % 1000 + "task: {params: {train_pool: 999}}\n"
    plan = load_plan(write_plan(tmp_path, text, "[{name: tiny-s, token_budget: 1000}]"))
    with pytest.raises(
        RecipeError, match=r"task.params .*train_pool.: 999.* differ from the pretraining corpus.params"
    ):
        load_finetune_specs(plan)


def test_unknown_study_lists_the_known_ones():
    with pytest.raises(UserError, match=r"no study plan .*known studies: pythia, tiny"):
        plan_path("huge")
