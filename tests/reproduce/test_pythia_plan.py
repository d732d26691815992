"""The Pythia study plan (recipes/open/pythia_*.yaml): its axes, held-out rule, seeds and sizes,
and the plan printed before anything starts, for every size."""

from collections import defaultdict

import pytest

from scaling_repro.cli import main
from scaling_repro.config.recipe import pet_size
from scaling_repro.config.study_plan import SIZES, load_plan, plan_path
from scaling_repro.reproduce.plan_print import cost_basis, estimate, finding_needs, grid_coverage
from scaling_repro.reproduce.plan_runs import load_finetune_specs

TOKENS_PER_STEP = 2_097_152


@pytest.fixture(scope="module", params=[*SIZES, "quick"])
def sized(request):
    size = request.param
    plan = load_plan(plan_path("pythia", quick=size == "quick", size=None if size == "quick" else size))
    return size, plan, load_finetune_specs(plan)


def test_every_run_uses_a_base_model_revision_of_the_plan(sized):
    _, plan, specs = sized  # load_finetune_specs raises otherwise
    used = {(s.model.name, s.model.revision) for s, _ in specs}
    assert used == {(m.name, r) for m in plan.hub_models for r in m.revisions}


@pytest.mark.parametrize("size", SIZES)
def test_the_grid_gives_every_finding_what_it_needs(size):
    plan = load_plan(plan_path("pythia", size=size))
    needs = {finding: met for finding, _, met in finding_needs(grid_coverage(plan, load_finetune_specs(plan)))}
    assert all(needs.values()), needs


def test_the_quick_grid_is_a_smoke_run_whose_findings_lack_data_sizes_and_seeds():
    plan = load_plan(plan_path("pythia", quick=True))
    coverage = grid_coverage(plan, load_finetune_specs(plan))
    assert all(coverage[m]["data"] == 3 and coverage[m]["seeds"] == 1 for m in coverage)
    assert not any(met for _, _, met in finding_needs(coverage)[:6])


def test_each_recipe_holds_out_its_largest_data_size(sized):
    _, _, specs = sized
    by_recipe = defaultdict(list)
    for spec, recipe in specs:
        by_recipe[recipe].append(spec)
    for recipe, runs in by_recipe.items():
        largest = max(s.task.train_examples for s in runs)
        assert all(s.held_out == (s.task.train_examples == largest) for s in runs), recipe


@pytest.mark.parametrize("size", SIZES)
def test_the_real_plan_spans_the_paper_s_axes_with_three_seeds(size):
    plan = load_plan(plan_path("pythia", size=size))
    specs = [spec for spec, _ in load_finetune_specs(plan)]
    assert {s.task.seed for s in specs} == {0, 1, 2}
    assert all(s.task.name == "wmt14_en_de" and s.task.data_dir is None for s in specs)
    finals = {s.model.name for s in specs if s.model.revision == "step143000"}
    assert len(finals) >= 3 and "EleutherAI/pythia-1b" in finals
    steps = {int(s.model.revision.removeprefix("step")) for s in specs if s.model.name == "EleutherAI/pythia-1b"}
    assert min(steps) * TOKENS_PER_STEP < 90e9 and max(steps) * TOKENS_PER_STEP > 290e9 and len(steps) >= 3
    tokens = {s.model.revision: s.model.pretrain_tokens for s in specs if s.model.pretrain_tokens is not None}
    assert all(t == int(r.removeprefix("step")) * TOKENS_PER_STEP for r, t in tokens.items())
    pet = {(s.method.kind, pet_size(s.method)) for s in specs if s.model.name == "EleutherAI/pythia-1b"}
    assert sum(k == "prompt" for k, _ in pet) >= 3 and sum(k == "lora" for k, _ in pet) >= 3
    fmt_data = {s.task.train_examples for s in specs if s.method.kind == "full"}
    pet_data = {s.task.train_examples for s in specs if s.method.kind != "full"}
    assert max(fmt_data) > max(pet_data)  # PET small, FMT larger, as in the paper
    assert all(s.eval.zero_shot == s.name.startswith("pythia-model-size") for s in specs)


def test_the_sizes_nest_so_a_study_folder_can_grow():
    ids = {
        size: {s.run_id for s, _ in load_finetune_specs(load_plan(plan_path("pythia", size=size)))} for size in SIZES
    }
    assert ids["small"] < ids["medium"] < ids["full"]


@pytest.mark.parametrize(("size", "hours"), [("small", 8), ("medium", 30), ("full", 60)])
def test_the_estimated_gpu_hours_of_each_size_meet_its_target(size, hours):
    plan = load_plan(plan_path("pythia", size=size))
    total = estimate(plan, load_finetune_specs(plan), cost_basis(plan)).total_hours
    assert 0.25 * hours < total <= hours
    assert plan.targets.max_gpu_hours is not None and total <= plan.targets.max_gpu_hours


def test_fmt_on_the_largest_models_asks_for_several_gpus():
    plan = load_plan(plan_path("pythia", size="full"))
    wide = {s.model.name for s, _ in load_finetune_specs(plan) if s.launch.gpus_per_node > 1}
    assert wide == {"EleutherAI/pythia-1.4b", "EleutherAI/pythia-2.8b"}
    assert all(s.method.kind == "full" for s, _ in load_finetune_specs(plan) if s.launch.gpus_per_node > 1)


@pytest.mark.parametrize("size", SIZES)
def test_dry_run_prints_the_plan_and_its_estimate_and_starts_nothing(size, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "pythia", "--size", size, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"Plan pythia-{size}:" in printed and "GPU-hours are estimates (H100-hours)" in printed
    assert "within the" in printed and "<- this plan" in printed
    assert "What each finding needs from the grid:" in printed and "[missing]" not in printed
    assert not list(tmp_path.iterdir())


def test_a_measured_tokens_per_example_replaces_the_plan_s_assumption(tmp_path):
    plan = load_plan(plan_path("pythia", size="small"))
    (tmp_path / "tokens_per_example.json").write_text('{"tokens_per_example": 45.0}')
    assert cost_basis(plan, tmp_path).tokens_per_example == 45.0
    assert cost_basis(plan).tokens_per_example == plan.cost.tokens_per_example


def test_inline_recipes_are_written_as_files_that_expand_to_the_plan_s_runs(tmp_path):
    from scaling_repro.config.sweep import load_runs
    from scaling_repro.reproduce.plan_runs import write_inline_recipes

    plan = load_plan(plan_path("pythia", size="small"))
    written = write_inline_recipes(plan, tmp_path)
    assert [p.name for p in written] == [f"pythia-small-{name}.yaml" for name in plan.finetune]
    from_files = {spec.run_id for path in written for spec in load_runs(path).runs}
    assert from_files == {spec.run_id for spec, _ in load_finetune_specs(plan)}
    stamps = [p.stat().st_mtime_ns for p in written]
    write_inline_recipes(plan, tmp_path)
    assert [p.stat().st_mtime_ns for p in written] == stamps  # unchanged files are left as they are


def test_dry_run_on_slurm_names_the_array_jobs_it_would_submit(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "pythia", "--size", "full", "--backend", "slurm", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    # 8 recipes, and FMT's model-size recipe in two launch sections (1 and 2 GPUs)
    assert "Slurm array jobs (slurm), submitit folder slurm/; 9 array jobs" in printed
