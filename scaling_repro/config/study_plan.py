"""The study plan of ``scaling-repro reproduce``: which base models to pretrain, which finetuning
sweeps to run, how to analyse them, and the targets the run is held to.

A plan is a YAML file (``recipes/<study>/study.yaml``; ``--quick`` reads ``quick.yaml`` beside
it), with ``extends:`` like recipes. Paths in it are relative to the plan file. Everything a run
produces lives in one output directory: ``pretrained/`` (tokenizer and base models),
``runs/`` (one directory per finetuning run), ``report/`` (fits, tables, figures, findings).
Model paths in the finetuning recipes (``pretrained/<model>``) are relative to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from scaling_repro.config.base import ConfigSection, int_like
from scaling_repro.errors import RecipeError, UserError

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
PRETRAINED_DIR = "pretrained"
RUNS_DIR = "runs"
REPORT_DIR = "report"


class BaseModelPlan(ConfigSection):
    """One base model of the ladder: its pretraining token budget and extra checkpoints."""

    name: str = Field(description="tiny config name (`scaling-repro models`)")
    token_budget: int = Field(ge=1)
    checkpoint_tokens: list[int] = Field(default_factory=list, description="the pretraining-data axis")

    _ints = field_validator("token_budget", mode="before")(int_like)

    @field_validator("checkpoint_tokens", mode="before")
    @classmethod
    def _int_list(cls, value: Any) -> Any:
        return [int_like(v) for v in value] if isinstance(value, list) else value

    @property
    def revisions(self) -> list[str]:
        """The checkpoint revisions pretraining exports (``tokens-N``), the final one last."""
        return [f"tokens-{t}" for t in sorted(set(self.checkpoint_tokens) | {self.token_budget})]


class AnalysisSettings(ConfigSection):
    """How the finetuning results are fitted and judged (experiments are found from the runs'
    factors: see :mod:`scaling_repro.analysis.reproduction`)."""

    bootstrap: int = Field(200, ge=0, description="bootstrap replicates for parameter intervals (0 = none)")
    level: float = Field(0.9, gt=0, lt=1, description="central coverage of the bootstrap intervals")
    noise_sigmas: float = Field(2.0, gt=0, description="how many seed-noise sigmas a difference must exceed")
    mad_threshold: float = Field(0.03, gt=0, description="finding 1: largest held-out MAD that counts as a fit")
    alpha_t_threshold: float = Field(0.01, gt=0, description="finding 3: |alpha_t| below this is 'ineffective'")


class Targets(ConfigSection):
    """What the run is held to; printed, checked, never enforced by stopping."""

    max_minutes: float = Field(15, gt=0, description="whole run wall time on 2 CPU cores")
    max_memory_gb: float = Field(4, gt=0)


class StudyPlan(ConfigSection):
    """A whole reproduction: base models, finetuning recipes, analysis, targets."""

    name: str
    description: str = ""
    pretrain_recipe: Path = Field(description="the pretraining recipe (corpus, tokenizer, optimizer)")
    models: list[BaseModelPlan] = Field(min_length=1)
    finetune: list[Path] = Field(min_length=1, description="finetuning recipes, run together")
    analysis: AnalysisSettings
    targets: Targets = Field(default_factory=Targets)

    def model(self, name: str) -> BaseModelPlan:
        """Return the plan of base model ``name``."""
        for model in self.models:
            if model.name == name:
                return model
        raise UserError(f"the study plan pretrains no model {name!r}; it has {[m.name for m in self.models]}")


def plan_path(study: str, quick: bool = False, recipes_dir: Path = RECIPES_DIR) -> Path:
    """Return ``recipes/<study>/study.yaml`` (``quick.yaml`` with ``quick``), or raise UserError."""
    path = recipes_dir / study / ("quick.yaml" if quick else "study.yaml")
    if not path.is_file():
        known = sorted(p.parent.name for p in recipes_dir.glob("*/study.yaml"))
        raise UserError(
            f"no study plan {path}; known studies: {', '.join(known) or 'none'} "
            "(run from a checkout of the repository, or pass --plan FILE)"
        )
    return path


def load_plan(path: str | Path) -> StudyPlan:
    """Return the validated plan in ``path`` with its paths made absolute, or raise RecipeError."""
    from scaling_repro.config.recipe_file import load_recipe_dict

    path = Path(path).resolve()
    data = load_recipe_dict(path)
    try:
        plan = StudyPlan.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(plan)"
        raise RecipeError(f"{path}: {where}: {first['msg']}") from None
    resolved = plan.model_copy(
        update={
            "pretrain_recipe": path.parent / plan.pretrain_recipe,
            "finetune": [path.parent / recipe for recipe in plan.finetune],
        }
    )
    for recipe in [resolved.pretrain_recipe, *resolved.finetune]:
        if not recipe.is_file():
            raise RecipeError(f"{path}: recipe {recipe} does not exist")
    names = [m.name for m in plan.models]
    if len(set(names)) != len(names):
        raise RecipeError(f"{path}: models: a model is listed twice: {names}")
    return resolved
