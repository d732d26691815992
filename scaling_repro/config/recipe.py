"""Recipe schema: what one study is, with defaults that match the paper.

A recipe YAML has the sections ``task``, ``model``, ``method``, ``train``, ``eval``, ``sweep``,
``launch`` plus ``name``, ``description`` and ``output_dir``. Every model here forbids unknown
keys, so a typo is an error, not a silently ignored setting. Reading a recipe file (``extends:``,
command-line overrides) is :mod:`scaling_repro.config.recipe_file`; sweep expansion is
:mod:`scaling_repro.config.sweep`.

Paper defaults (Zhang et al. 2024, Sec. 2 and Appendix): Adafactor with a cosine schedule,
LR 1e-3 (FMT) / 3e-1 (Prompt) / 1e-2 (LoRA), global batch 128 (FMT) / 16 (PET), prompt length
100, LoRA rank 4 on attention and feed-forward, up to 200K steps or 100 epochs, best checkpoint
by dev perplexity.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from scaling_repro.config.base import ConfigSection, int_like

if TYPE_CHECKING:
    from typing_extensions import Self


class IdentitySection(ConfigSection):
    """A section that is part of a run's identity (task, model, method, train).

    ``identity_excluded`` fields never count: where data is read from or cached, how progress
    is logged, how a run executes. ``identity_at_default`` fields count at their default value
    whatever they are set to: they too change how a run executes, not what it computes (both
    rules keep a run's id however it is tuned; which fields follow which is fixed by the ids of
    existing runs). The canonical JSON of a section is computed once per instance: the runs of a
    sweep share every section that no axis changes.
    """

    identity_excluded: ClassVar[tuple[str, ...]] = ()
    identity_at_default: ClassVar[tuple[str, ...]] = ()

    def identity(self) -> dict[str, Any]:
        """Return this section's part of the run identity as plain JSON values."""
        identity = self.model_dump(mode="json", exclude=set(self.identity_excluded))
        fields = type(self).model_fields
        identity.update({name: fields[name].default for name in self.identity_at_default})
        return identity

    @cached_property
    def identity_json(self) -> str:
        """Return :meth:`identity` as canonical JSON."""
        return canonical_json(self.identity())

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        return _drop_cached(super().model_copy(update=update, deep=deep), update, ("identity_json",))


def canonical_json(value: Any) -> str:
    """Return ``value`` as canonical JSON (sorted keys, no spaces): what run ids hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _drop_cached(copied: Any, update: Mapping[str, Any] | None, names: tuple[str, ...]) -> Any:
    """Return ``copied`` without the cached properties ``names`` when ``update`` changed it:
    ``model_copy`` copies the instance dict, where cached properties live."""
    if update:
        for name in names:
            copied.__dict__.pop(name, None)
    return copied


class LocalFiles(ConfigSection):
    """Files of the ``local`` task (jsonl, tsv or csv), or a local copy of a hub task's splits."""

    train: str | None = None
    dev: str | None = None
    test: dict[str, str] = Field(default_factory=dict, description="test-set name -> file")
    source_column: str = "source"
    target_column: str = "target"
    format: Literal["auto", "jsonl", "tsv", "csv"] = "auto"


# The tasks a recipe may name; the data stage has one loader per name (data.tasks.LOADERS).
TASK_NAMES: tuple[str, ...] = ("wmt14_en_de", "wmt19_en_zh", "mlsum", "flores200", "local", "synthetic_mt")


class TaskConfig(IdentitySection):
    """Which data a run finetunes and is evaluated on."""

    identity_excluded: ClassVar[tuple[str, ...]] = ("data_dir", "cache_dir")

    name: str = Field(description="task registry name, e.g. wmt14_en_de, mlsum, local, synthetic_mt")
    train_examples: int | None = Field(None, ge=1, description="finetuning data size Df; null = all")
    seed: int = Field(0, description="seed of the random training subset (the paper's 3 runs = 3 seeds)")
    dev_examples: int | None = Field(None, ge=1, description="cap on dev examples; null = all")
    test_examples: int | None = Field(None, ge=1, description="cap per test set; null = all")
    max_source_tokens: int | None = Field(None, ge=1, description="null = the task's (256 MT, 512 MLSum)")
    max_target_tokens: int | None = Field(None, ge=1, description="null = the task's (256)")
    files: LocalFiles | None = None
    data_dir: str | None = Field(None, description="local copy of a hub task's data (offline use)")
    cache_dir: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="task-specific options")

    _int_fields = field_validator("train_examples", "dev_examples", "test_examples", mode="before")(int_like)

    @field_validator("name")
    @classmethod
    def _known_task(cls, name: str) -> str:
        if name not in TASK_NAMES:
            raise ValueError(f"unknown task; allowed: {', '.join(TASK_NAMES)}")
        return name


class ModelConfig(IdentitySection):
    """The base LLM: a paper/tiny config name, a Hugging Face id, or a local directory."""

    identity_at_default: ClassVar[tuple[str, ...]] = ("attn_implementation",)

    name: str = Field(description="config name (see `scaling-repro models`), HF id or local path")
    revision: str | None = Field(None, description="hub revision, e.g. Pythia's 'step143000'")
    path: str | None = Field(None, description="pretrained weights for a config name")
    init: Literal["pretrained", "random"] = "pretrained"
    pretrain_tokens: int | None = Field(None, ge=0, description="tokens the base model saw")
    tokenizer: str | None = Field(None, description="tokenizer id/path; null = the model's")
    trust_remote_code: bool = False
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    attn_implementation: str | None = None

    _int_fields = field_validator("pretrain_tokens", mode="before")(int_like)


class FullMethod(IdentitySection):
    """FMT: every parameter of the base model is trained."""

    kind: Literal["full"] = "full"
    pet_size_field: ClassVar[str | None] = None  # FMT has no PET-size factor
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(128, ge=1, description="global batch in examples")


class PromptMethod(IdentitySection):
    """Prompt tuning: a trained soft prompt of ``prompt_length`` vectors before the input."""

    kind: Literal["prompt"] = "prompt"
    pet_size_field: ClassVar[str | None] = "prompt_length"
    lr: float = Field(3e-1, gt=0)
    batch_size: int = Field(16, ge=1, description="global batch in examples")
    prompt_length: int = Field(100, ge=1)
    init: Literal["sample_vocab", "random", "text"] = "sample_vocab"
    init_text: str | None = None

    @model_validator(mode="after")
    def _text_init_needs_text(self) -> PromptMethod:
        if self.init == "text" and not self.init_text:
            raise ValueError("method.init 'text' needs method.init_text")
        return self


class LoraMethod(IdentitySection):
    """LoRA: W + BA on attention and feed-forward projections."""

    kind: Literal["lora"] = "lora"
    pet_size_field: ClassVar[str | None] = "rank"
    lr: float = Field(1e-2, gt=0)
    batch_size: int = Field(16, ge=1, description="global batch in examples")
    rank: int = Field(4, ge=1)
    alpha: float | None = Field(None, gt=0, description="null = rank (scaling 1 at every rank)")
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: Literal["all-linear"] | list[str] = "all-linear"


Method = Annotated[FullMethod | PromptMethod | LoraMethod, Field(discriminator="kind")]
METHOD_CLASSES: dict[str, type[FullMethod | PromptMethod | LoraMethod]] = {
    "full": FullMethod,
    "prompt": PromptMethod,
    "lora": LoraMethod,
}
# The method lists every other layer uses, in the paper's order (FMT, Prompt, LoRA).
METHODS: tuple[str, ...] = tuple(METHOD_CLASSES)
PET_SIZE_FIELDS: dict[str, str] = {
    kind: cls.pet_size_field for kind, cls in METHOD_CLASSES.items() if cls.pet_size_field is not None
}
PET_METHODS: tuple[str, ...] = tuple(PET_SIZE_FIELDS)


def pet_size(method: FullMethod | PromptMethod | LoraMethod) -> int | None:
    """Return the PET-size factor of ``method``: its prompt length or LoRA rank; None for FMT."""
    return None if method.pet_size_field is None else getattr(method, method.pet_size_field)


# How a run is executed, not what it computes: never part of its identity.
EXECUTION_ONLY = ("packing", "compile", "tf32", "checkpoint_minutes")


class TrainConfig(IdentitySection):
    """Optimizer, schedule, stopping and checkpointing of one finetuning run."""

    identity_excluded: ClassVar[tuple[str, ...]] = ("log_every", "trackers", *EXECUTION_ONLY)
    identity_at_default: ClassVar[tuple[str, ...]] = (
        "micro_batch_size",
        "gradient_checkpointing",
        "deepspeed",
        "checkpoint_every",
        "threads",
    )

    optimizer: Literal["adafactor", "adamw"] = "adafactor"
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="cosine floor as a fraction of lr")
    max_steps: int = Field(200_000, ge=0)
    max_epochs: float = Field(100, gt=0)
    min_steps: int = Field(0, ge=0, description="floor on steps for tiny data sizes")
    micro_batch_size: int | None = Field(None, ge=1, description="per device; null = no accumulation")
    grad_clip: float | None = Field(1.0, gt=0)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    gradient_checkpointing: bool = False
    deepspeed: str | None = Field(None, description="path to a DeepSpeed JSON config (ZeRO-2/3)")
    eval_every: int = Field(1000, ge=1, description="steps between dev evaluations")
    eval_every_epochs: float | None = Field(None, gt=0, description="when set, replaces eval_every")
    checkpoint_every: int | None = Field(None, ge=1, description="steps; null = at every dev eval")
    checkpoint_minutes: float | None = Field(
        None, gt=0, description="also checkpoint once this many minutes passed since the last checkpoint; null = off"
    )
    early_stopping_patience: int | None = Field(None, ge=1, description="evals; null = off (paper)")
    seed: int | None = Field(None, description="init/shuffle seed; null = task.seed")
    log_every: int = Field(50, ge=1)
    threads: int | None = Field(None, ge=1, description="torch CPU threads per process")
    packing: Literal["auto", "on", "off"] = Field(
        "auto", description="several examples per row instead of padding (auto: where the model and method allow)"
    )
    compile: bool = Field(False, description="torch.compile the model (dynamic shapes)")
    tf32: bool = Field(True, description="TF32 tensor cores for fp32 matmuls on CUDA")
    trackers: list[Literal["tensorboard", "wandb"]] = Field(default_factory=list)

    _int_fields = field_validator("max_steps", "min_steps", "eval_every", mode="before")(int_like)


MetricName = Literal["bleurt", "rougeL", "bleu", "chrf"]


class EvalConfig(ConfigSection):
    """What is measured on the best checkpoint."""

    batch_size: int = Field(32, ge=1, description="test loss and BLEURT batch")
    generate_batch_size: int | None = Field(
        None,
        ge=1,
        description="greedy decoding batch; null = batch_size (a KV cache with one key/value head allows far more)",
    )
    generate: bool = True
    metrics: list[MetricName] | None = Field(None, description="null = the task's metrics")
    max_new_tokens: int | None = Field(None, ge=1, description="null = the task's max target length")
    max_generate_examples: int | None = Field(None, ge=1, description="cap per test set")
    bleurt_checkpoint: str | None = Field(None, description="BLEURT-20 (PyTorch) directory")
    zero_shot: bool = False
    few_shot: list[int] = Field(default_factory=list, description="e.g. [1, 5]")


class SweepConfig(ConfigSection):
    """Axes over dotted recipe paths: ``grid`` is a Cartesian product, each ``zip`` group
    advances its axes together; groups and grid axes combine as a product."""

    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip: list[dict[str, list[Any]]] = Field(default_factory=list)
    holdout: dict[str, list[Any]] = Field(
        default_factory=dict, description="axis values held out of the fit (the paper's bold cells)"
    )

    @field_validator("grid", "holdout")
    @classmethod
    def _axes_non_empty(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in axes.items():
            if not values:
                raise ValueError(f"axis {path!r} has no values")
        return axes

    @field_validator("zip")
    @classmethod
    def _zip_groups_aligned(cls, groups: list[dict[str, list[Any]]]) -> list[dict[str, list[Any]]]:
        for group in groups:
            lengths = {path: len(values) for path, values in group.items()}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"zip axes must have equal lengths, got {lengths}")
            if any(n == 0 for n in lengths.values()):
                raise ValueError(f"zip group has an empty axis: {lengths}")
        return groups


def _one_line(text: str) -> str:
    """Reject control characters: these strings become lines of an sbatch script, where a
    newline would start a new #SBATCH directive or shell command."""
    if text.isprintable():  # no character of the categories Other or Separator (but space)
        return text
    bad = [c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")]
    if bad:
        raise ValueError(f"contains control character {bad[0]!r}; allowed: one line of printable text")
    return text


def _sbatch_option(name: str) -> str:
    """Accept an sbatch long option name as written after ``--``, e.g. qos or mail-type."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        raise ValueError("is not an sbatch option name; allowed: letters, digits, '-' and '_', e.g. qos")
    return name


OneLine = Annotated[str, AfterValidator(_one_line)]
SbatchOption = Annotated[str, AfterValidator(_sbatch_option)]


class LaunchConfig(ConfigSection):
    """Resources per run for the torchrun and Slurm backends (not part of the run id)."""

    gpus_per_node: int = Field(1, ge=0)
    nodes: int = Field(1, ge=1)
    time_minutes: int = Field(24 * 60, ge=1)
    partition: OneLine | None = None
    account: OneLine | None = None
    cpus_per_task: int | None = Field(None, ge=1, description="Slurm CPUs per task; null = 8 per GPU")
    mem_gb: int | None = Field(None, ge=1, description="Slurm host memory per task; null = the partition's default")
    slurm_extra: dict[SbatchOption, OneLine] = Field(default_factory=dict, description="other #SBATCH options")


_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class RunSpec(ConfigSection):
    """One fully resolved run: a recipe with its sweep axes set to one combination.

    Its id hashes what determines the trained model (task, model, method, train). Evaluation
    settings are not part of it: they can be changed and re-applied to a finished run with
    ``scaling-repro evaluate RUN_DIR`` without retraining. Name, description, output_dir,
    launch resources, index and held-out mark do not change it either.
    """

    name: str = Field(pattern=_NAME_PATTERN)
    description: str = ""
    output_dir: OneLine = Field("runs", description="runs go to output_dir/name/run_id; Slurm logs too")
    task: TaskConfig
    model: ModelConfig
    method: Method
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    launch: LaunchConfig = Field(default_factory=LaunchConfig)
    index: int = Field(0, ge=0, description="position in the recipe's sweep")
    held_out: bool = False

    @property
    def seed(self) -> int:
        """The init/shuffle seed: ``train.seed``, or ``task.seed`` when that is null."""
        return self.task.seed if self.train.seed is None else self.train.seed

    def identity(self) -> dict[str, Any]:
        """Return the part of the spec that determines the trained model, as plain JSON values:
        its task, model, method and train sections, each less what does not count
        (:class:`IdentitySection`)."""
        return {name: getattr(self, name).identity() for name in IDENTITY_SECTIONS}

    @cached_property
    def run_id(self) -> str:
        """12 hex digits of the SHA-256 of the canonical JSON of :meth:`identity`, computed once."""
        # The sections' canonical JSON in sorted key order is the canonical JSON of identity().
        text = "{" + ",".join(f'"{name}":{getattr(self, name).identity_json}' for name in IDENTITY_SECTIONS) + "}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    @cached_property
    def run_dir(self) -> Path:
        """``output_dir/<name>/<run_id>/``."""
        return Path(self.output_dir, self.name, self.run_id)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        return _drop_cached(super().model_copy(update=update, deep=deep), update, ("run_id", "run_dir"))


IDENTITY_SECTIONS = ("method", "model", "task", "train")  # sorted, as in canonical JSON
# The settings that count at their default value, by section.
RUNTIME_SETTINGS: dict[str, tuple[str, ...]] = {
    "model": ModelConfig.identity_at_default,
    "train": TrainConfig.identity_at_default,
}


# Top-level keys of a recipe file: a RunSpec without its per-run fields, plus the sweep.
RECIPE_KEYS = tuple(k for k in RunSpec.model_fields if k not in ("index", "held_out")) + ("sweep",)
