"""The study plan of ``scaling-repro reproduce``: the base models (pretrained by the study, or
hub models at named revisions), the finetuning recipes (files, or recipes written in the plan
with their task, axes, grids, seeds and holdouts), how to analyse them, how to launch the runs
and the targets the study is held to.

A plan is a YAML file with ``extends:`` like recipes. ``reproduce STUDY`` reads
``recipes/STUDY/study.yaml`` (``--quick``: ``quick.yaml`` beside it) or, for a plan that comes in
sizes, ``recipes/*/STUDY_SIZE.yaml`` (``--quick``: ``STUDY_quick.yaml``). Paths in a plan are
relative to the plan file, and so are the ``extends:`` of its inline recipes. Everything a run
produces lives in one output directory: ``pretrained/`` (tokenizer and base models the study
pretrains), ``recipes/`` (the plan's inline recipes as files, which the runs are rebuilt from),
``runs/`` (one directory per finetuning run), ``report/`` (fits, tables, figures, findings).
Model paths in the recipes (``pretrained/<model>``, a stand-in's directory) are relative to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from scaling_repro.config.analysis_settings import AnalysisSettings
from scaling_repro.config.base import ConfigSection, int_like
from scaling_repro.errors import RecipeError, UserError

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
PRETRAINED_DIR = "pretrained"
RUNS_DIR = "runs"
REPORT_DIR = "report"
INLINE_RECIPES_DIR = "recipes"
SIZES = ("small", "medium", "full")


class BaseModelPlan(ConfigSection):
    """One base model the study pretrains: its pretraining token budget and extra checkpoints."""

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


class StandIn(ConfigSection):
    """A tiny random GPT-NeoX the base-models stage builds in place of a hub model, one random
    initialisation per revision, for offline smoke runs of a plan."""

    hidden_size: int = Field(ge=8, description="model width; differ per model to give a model-size axis")
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)


class HubModelPlan(ConfigSection):
    """A base model the study downloads: a hub id (or a directory) and the revisions it uses,
    the final checkpoint last."""

    name: str = Field(description="hub id (EleutherAI/pythia-1b) or a directory with one subfolder per revision")
    revisions: list[str] = Field(min_length=1, description="hub revisions, e.g. step143000; the last is final")
    stand_in: StandIn | None = Field(None, description="build a tiny random stand-in at `name` (offline tests)")


class Targets(ConfigSection):
    """What the study is held to; printed, checked, never enforced by stopping (null = none)."""

    max_minutes: float | None = Field(15, gt=0, description="whole run wall time on 2 CPU cores")
    max_memory_gb: float | None = Field(4, gt=0)
    max_gpu_hours: float | None = Field(None, gt=0, description="the estimate of the plan's finetuning, H100-hours")


class CostSettings(ConfigSection):
    """What the GPU-hour estimate of the plan assumes until the data stage has measured it."""

    tokens_per_example: float | None = Field(
        None, gt=0, description="real tokens per training example; null = the task's length cap (an upper bound)"
    )
    source: str = Field("", description="where tokens_per_example comes from")


class StudyLaunch(ConfigSection):
    """Where the finetuning runs execute (the command line's --gpus / --backend override it)."""

    backend: Literal["local", "slurm"] = "local"
    gpus: list[str] = Field(default_factory=list, description="local GPUs; empty = CPU processes (--jobs)")
    slurm_folder: str = Field("slurm", description="submitit logs, relative to the study folder")
    cluster: Literal["slurm", "local", "debug"] = Field("slurm", description="submitit cluster")
    array_parallelism: int | None = Field(None, ge=1, description="Slurm array tasks at once; null = all")


Recipe = Path | dict[str, Any]


class StudyPlan(ConfigSection):
    """A whole reproduction: base models, finetuning recipes, analysis, launch, targets."""

    name: str
    description: str = ""
    pretrain_recipe: Path | None = Field(None, description="the pretraining recipe of `models`")
    models: list[BaseModelPlan] = Field(default_factory=list, description="base models the study pretrains")
    hub_models: list[HubModelPlan] = Field(default_factory=list, description="base models the study downloads")
    stand_in_corpus: str | None = Field(
        None,
        description="folder in the study folder where the data stage writes a small synthetic corpus "
        "in the task.data_dir layout of WMT14 En-De (offline tests)",
    )
    finetune: dict[str, Recipe] = Field(description="finetuning recipes, by name: files or inline recipes")
    analysis: AnalysisSettings
    cost: CostSettings = Field(default_factory=CostSettings)
    launch: StudyLaunch = Field(default_factory=StudyLaunch)
    targets: Targets = Field(default_factory=Targets)

    @field_validator("finetune", mode="before")
    @classmethod
    def _named_recipes(cls, value: Any) -> Any:
        """A list of recipe files is named by their stems; a null entry (a size leaving a recipe out) is dropped."""
        if isinstance(value, list):
            names = [Path(str(v)).stem if isinstance(v, str | Path) else None for v in value]
            if None in names:
                raise ValueError("a list of finetuning recipes holds file paths; write inline recipes as a mapping")
            if len(set(names)) != len(names):
                raise ValueError(f"two recipe files share a name: {names}")
            value = dict(zip(names, value))
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None}
            if not value:
                raise ValueError("no finetuning recipe; allowed: a list of files or a mapping name -> recipe")
        return value

    @model_validator(mode="after")
    def _base_models(self) -> StudyPlan:
        if not self.models and not self.hub_models:
            raise ValueError("the plan names no base model; allowed: `models` (pretrained) and/or `hub_models`")
        if self.models and self.pretrain_recipe is None:
            raise ValueError("`models` are pretrained by the study: set `pretrain_recipe`")
        if self.pretrain_recipe is not None and not self.models:
            raise ValueError("`pretrain_recipe` is set but `models` lists no model to pretrain")
        return self

    def model(self, name: str) -> BaseModelPlan:
        """Return the plan of base model ``name``."""
        for model in self.models:
            if model.name == name:
                return model
        raise UserError(f"the study plan pretrains no model {name!r}; it has {[m.name for m in self.models]}")

    def inline_recipe_file(self, name: str) -> Path:
        """Return where the study folder keeps inline recipe ``name`` (relative to the folder)."""
        return Path(INLINE_RECIPES_DIR) / f"{self.name}-{name}.yaml"


def plan_path(study: str, quick: bool = False, recipes_dir: Path = RECIPES_DIR, size: str | None = None) -> Path:
    """Return the plan file of ``study``: ``recipes/<study>/study.yaml`` (``quick.yaml`` with
    ``quick``) for a study without sizes, else ``recipes/*/<study>_<size>.yaml`` (``size``
    default ``small``; ``quick`` reads ``<study>_quick.yaml``); raise UserError naming the
    known studies and sizes."""
    folder = recipes_dir / study
    if (folder / "study.yaml").is_file():
        if size is not None:
            raise UserError(f"--size {size}: study {study!r} has no sizes (it has one plan, and --quick)")
        path = folder / ("quick.yaml" if quick else "study.yaml")
        if path.is_file():
            return path
    elif (sized := sorted(recipes_dir.glob(f"*/{study}_*.yaml"))) and study.isidentifier():
        if size is not None and size not in SIZES:
            raise UserError(f"--size {size}: unknown size; allowed: {', '.join(SIZES)}")
        path = sized[0].parent / f"{study}_{'quick' if quick else size or 'small'}.yaml"
        if path.is_file():
            return path
        known = [p.stem.removeprefix(f"{study}_") for p in sized]
        raise UserError(f"no study plan {path}; study {study!r} has: {', '.join(known)}")
    else:
        path = folder / "study.yaml"
    known = sorted({p.parent.name for p in recipes_dir.glob("*/study.yaml")} | set(sized_studies(recipes_dir)))
    raise UserError(
        f"no study plan {path}; known studies: {', '.join(known) or 'none'} "
        "(run from a checkout of the repository, or pass --plan FILE)"
    )


def sized_studies(recipes_dir: Path = RECIPES_DIR) -> list[str]:
    """Return the studies that come in sizes (a ``recipes/*/<study>_small.yaml``)."""
    return sorted(p.stem.removesuffix("_small") for p in recipes_dir.glob("*/*_small.yaml"))


def size_plans(path: Path) -> dict[str, Path]:
    """Return the plan file of each size beside plan ``path`` (``<study>_<size>.yaml``), or {}."""
    study, _, _ = path.stem.rpartition("_")
    if not study:
        return {}
    return {size: p for size in SIZES if (p := path.parent / f"{study}_{size}.yaml").is_file()}


def _validation_error(path: Path, err: ValidationError) -> RecipeError:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(plan)"
    return RecipeError(f"{path}: {where}: {first['msg']}")


def load_plan(path: str | Path) -> StudyPlan:
    """Return the validated plan in ``path`` with its paths made absolute and the ``extends:`` of
    its inline recipes merged in, or raise RecipeError."""
    from scaling_repro.config.recipe_file import load_recipe_dict

    path = Path(path).resolve()
    data = load_recipe_dict(path)
    try:
        plan = StudyPlan.model_validate(data)
    except ValidationError as err:
        raise _validation_error(path, err) from None
    finetune: dict[str, Recipe] = {}
    for name, recipe in plan.finetune.items():
        if isinstance(recipe, dict):
            finetune[name] = inline_recipe(recipe, path.parent, f"{path}: finetune.{name}")
            continue
        file = path.parent / recipe
        if not file.is_file():
            raise RecipeError(f"{path}: finetune.{name}: recipe {file} does not exist")
        finetune[name] = file
    pretrain = path.parent / plan.pretrain_recipe if plan.pretrain_recipe is not None else None
    if pretrain is not None and not pretrain.is_file():
        raise RecipeError(f"{path}: pretrain_recipe: {pretrain} does not exist")
    for field, names in (("models", [m.name for m in plan.models]), ("hub_models", [m.name for m in plan.hub_models])):
        if len(set(names)) != len(names):
            raise RecipeError(f"{path}: {field}: a model is listed twice: {names}")
    return plan.model_copy(update={"pretrain_recipe": pretrain, "finetune": finetune})


def inline_recipe(data: dict[str, Any], base_dir: Path, where: str) -> dict[str, Any]:
    """Return an inline recipe mapping with its ``extends:`` (relative to ``base_dir``) merged in."""
    from scaling_repro.config.recipe_file import deep_merge, load_recipe_dict

    data = dict(data)
    parents = data.pop("extends", [])
    parents = [parents] if isinstance(parents, str) else parents
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise RecipeError(f"{where}: extends: must be a path or a list of paths, got {parents!r}")
    merged: dict[str, Any] = {}
    for parent in parents:
        merged = deep_merge(merged, load_recipe_dict(base_dir / parent))
    return deep_merge(merged, data)
