"""The finetuning runs of a study plan, checked against its base models and corpus.

A plan's recipes are files or inline mappings (:class:`~scaling_repro.config.study_plan.StudyPlan`).
Child processes rebuild a run from a recipe file and its run id, so an inline recipe is written
into the study folder (``recipes/<plan>-<name>.yaml``) before its runs start; the file expands to
the same runs, which :func:`write_inline_recipes` checks.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from scaling_repro.config.recipe import RunSpec
from scaling_repro.config.study_plan import PRETRAINED_DIR, StudyPlan
from scaling_repro.errors import RecipeError
from scaling_repro.fileio import atomic_write_text


def pretrain_overrides(tokenizer: bool = True) -> list[str]:
    """Overrides that put the pretraining recipe's outputs in the study's ``pretrained/`` and
    (with ``tokenizer``) make every model use the tokenizer the data stage trained there."""
    return [f"output_dir={PRETRAINED_DIR}", *([f"tokenizer.path={PRETRAINED_DIR}/tokenizer"] if tokenizer else [])]


def base_model_revisions(plan: StudyPlan) -> set[tuple[str, str]]:
    """Return (model key, revision) of every checkpoint the plan provides: ``pretrained/<m>``
    paths of the models it pretrains, names of its hub models."""
    produced = {(f"{PRETRAINED_DIR}/{m.name}", rev) for m in plan.models for rev in m.revisions}
    return produced | {(m.name, rev) for m in plan.hub_models for rev in m.revisions}


def _model_key(spec: RunSpec) -> tuple[str, str | None]:
    return (spec.model.path or spec.model.name, spec.model.revision)


def load_finetune_specs(plan: StudyPlan) -> list[tuple[RunSpec, Path]]:
    """Return every finetuning run of the plan with its recipe file (for an inline recipe, its
    file in the study folder, relative to it), checked against the plan: each base model
    revision must be one the plan pretrains or downloads, a pretraining study's task ``params``
    must equal its corpus's (so no finetuning or test sentence occurs in pretraining), and no
    run may appear twice."""
    from scaling_repro.config.sweep import expand, load_runs

    corpus_params = None
    if plan.pretrain_recipe is not None:
        from scaling_repro.pretrain.recipe import load_pretrain_recipe

        corpus_params = load_pretrain_recipe(plan.pretrain_recipe, pretrain_overrides()).corpus.params
    produced = base_model_revisions(plan)
    specs: list[tuple[RunSpec, Path]] = []
    seen: dict[Path, str] = {}
    for name, recipe in plan.finetune.items():
        if isinstance(recipe, dict):
            runs, where_recipe = expand(recipe, f"finetune.{name}").runs, plan.inline_recipe_file(name)
        else:
            runs, where_recipe = load_runs(recipe).runs, recipe
        for spec in runs:
            where = f"{where_recipe}: run {spec.index}"
            if _model_key(spec) not in produced:
                model = f"{_model_key(spec)[0]}@{spec.model.revision}"
                raise RecipeError(
                    f"{where}: model {model} is not a base model of the study plan; it has "
                    f"{sorted(f'{p}@{r}' for p, r in produced)}"
                )
            if corpus_params is not None and spec.task.params != corpus_params:
                raise RecipeError(
                    f"{where}: task.params {spec.task.params} differ from the pretraining corpus.params "
                    f"{corpus_params}; they must match so that pretraining holds no finetuning or test sentence"
                )
            if spec.run_dir in seen:
                raise RecipeError(f"{where}: the same run ({spec.run_dir}) is also in {seen[spec.run_dir]}")
            seen[spec.run_dir] = str(where_recipe)
            specs.append((spec, where_recipe))
    return specs


def write_inline_recipes(plan: StudyPlan, out_dir: Path) -> list[Path]:
    """Write each inline recipe of the plan into the study folder (unchanged files are left as
    they are); return their paths. Raise RecipeError when a written file would not expand to the
    plan's runs (a value YAML cannot carry)."""
    from scaling_repro.config.sweep import expand, load_runs

    written = []
    for name, recipe in plan.finetune.items():
        if not isinstance(recipe, dict):
            continue
        path = out_dir / plan.inline_recipe_file(name)
        text = f"# finetune.{name} of study plan {plan.name} (written by `reproduce`; edit the plan, not this)\n"
        text += yaml.safe_dump(recipe, sort_keys=False, width=120)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
        expected = [spec.run_id for spec in expand(recipe, f"finetune.{name}").runs]
        if [spec.run_id for spec in load_runs(path).runs] != expected:
            raise RecipeError(f"{path}: does not expand to the runs of finetune.{name} of the plan")
        written.append(path)
    return written
