"""Every recipe under recipes/ validates; partial recipes are used; header cost figures are current.

Recipes are all ``*.yaml`` files except those named ``_*.yaml``: partial recipes that other
recipes pull in with ``extends:`` and that are not complete on their own.
"""

import re
from pathlib import Path

import pytest

from scaling_repro.cli import main
from scaling_repro.commands.validate import is_pretrain_recipe
from scaling_repro.config.recipe_file import load_recipe_dict, read_yaml
from scaling_repro.config.sweep import load_runs
from scaling_repro.launch.cost import gpu_hours, pretrain_gpu_hours
from tests.helpers.paths import REPO

RECIPES = REPO / "recipes"
ALL_YAML = sorted(RECIPES.rglob("*.yaml"))
RECIPE_FILES = [p for p in ALL_YAML if not p.name.startswith("_")]
FRAGMENTS = [p for p in ALL_YAML if p.name.startswith("_")]
COST = re.compile(r"about ([\d,.]+) GPU-hours")


def rel(path: Path) -> str:
    return str(path.relative_to(RECIPES))


def extends_chain(path: Path) -> set[Path]:
    """Every file ``path`` extends, directly or through its parents (a study plan's inline
    finetuning recipes included)."""
    data = read_yaml(path)
    parents = data.get("extends") or []
    parents = [parents] if isinstance(parents, str) else list(parents)
    finetune = data.get("finetune") or []
    for inline in (r for r in (finetune.values() if isinstance(finetune, dict) else finetune) if isinstance(r, dict)):
        extended = inline.get("extends") or []
        parents += [extended] if isinstance(extended, str) else extended
    found: set[Path] = set()
    for parent in parents:
        resolved = (path.parent / parent).resolve()
        found |= {resolved, *extends_chain(resolved)}
    return found


@pytest.mark.parametrize("path", RECIPE_FILES, ids=rel)
def test_every_recipe_validates(path, capsys):
    assert main(["validate", str(path), "--limit", "0"]) == 0
    captured = capsys.readouterr()
    assert "estimated GPU-hours" in captured.out, captured.err


def test_the_walk_finds_the_paper_open_and_pretraining_recipes():
    folders = {p.relative_to(RECIPES).parts[0] for p in RECIPE_FILES}
    assert {"paper", "open", "tiny"} <= folders
    assert any(is_pretrain_recipe(load_recipe_dict(p)) for p in RECIPE_FILES)


def test_every_partial_recipe_is_extended_by_some_recipe():
    used = set().union(*(extends_chain(p) for p in RECIPE_FILES))
    unused = [rel(p) for p in FRAGMENTS if p.resolve() not in used]
    assert not unused


def test_finetuning_recipe_names_are_unique_so_their_run_directories_never_mix():
    names: dict[str, str] = {}
    for path in RECIPE_FILES:
        data = load_recipe_dict(path)
        if is_pretrain_recipe(data):
            continue
        name = data["name"]
        assert name not in names, f"{rel(path)} and {names[name]} share the name {name!r}"
        names[name] = rel(path)


COSTED = [p for p in RECIPE_FILES if COST.search(p.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("path", COSTED, ids=rel)
def test_cost_in_the_header_comment_matches_the_estimate(path):
    text = path.read_text(encoding="utf-8")
    stated = float(COST.search(text).group(1).replace(",", ""))
    data = load_recipe_dict(path)
    if is_pretrain_recipe(data):
        from scaling_repro.pretrain.recipe import load_pretrain_recipe

        recipe = load_pretrain_recipe(path)
        estimate = sum(pretrain_gpu_hours(m, recipe.token_budget) for m in recipe.models)
    else:
        runs = load_runs(path).runs
        estimate = sum(gpu_hours(run) for run in runs)
        runs_stated = re.search(r"Cost: (\d+) runs", text)
        assert runs_stated and int(runs_stated.group(1)) == len(runs)
    assert stated == pytest.approx(estimate, rel=0.05), f"update the comment: estimate is {estimate:,.0f}"


def test_paper_and_open_recipes_state_their_cost():
    for path in RECIPE_FILES:
        if path.relative_to(RECIPES).parts[0] in ("paper", "open"):
            assert "Cost:" in path.read_text(encoding="utf-8"), rel(path)
