"""The pretraining recipe: which base models to pretrain, on which corpus, with which tokenizer
and for how many tokens, and where their checkpoints go (``tokens-<N>`` revisions)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from scaling_repro.config.base import ConfigSection, int_like
from scaling_repro.config.recipe import TrainConfig
from scaling_repro.errors import RecipeError

log = logging.getLogger(__name__)

PRETRAIN_TRAIN_DEFAULTS: dict[str, Any] = {
    "optimizer": "adamw",
    "schedule": "constant",
    "warmup_steps": 20,
    "weight_decay": 0.0,
    "max_epochs": 1000,  # the token budget decides the length
    "eval_every": 100,
    "log_every": 20,
    "threads": 1,  # one torch thread per process is fastest for tiny models (measured)
}


class CorpusConfig(ConfigSection):
    """Where the pretraining documents come from (``source`` picks a corpus generator)."""

    source: Literal["synthetic", "text"] = "synthetic"
    documents: int = Field(50_000, ge=1, description="training documents to generate / read")
    dev_documents: int = Field(500, ge=1)
    seed: int = 0
    parallel_share: float = Field(0.1, ge=0, le=1, description="synthetic: formatted translation pairs")
    sister_share: float = Field(0.1, ge=0, le=1, description="synthetic: zero-shot source language")
    parallel_templates: list[str] | None = Field(
        None, description="synthetic: formats of the parallel pairs ({source}, {target}); null = the finetuning format"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="synthetic: the task's task.params")
    files: list[str] = Field(default_factory=list, description="text: files, one document per line")

    _ints = field_validator("documents", "dev_documents", mode="before")(int_like)


class TokenizerSpec(ConfigSection):
    """A tokenizer to load (``path``), or to train on the corpus and share across the ladder."""

    path: str | None = None
    vocab_size: int = Field(512, ge=8)
    kind: Literal["bpe", "unigram"] = "bpe"
    train_documents: int = Field(20_000, ge=1, description="corpus documents it is trained on")


class PretrainRecipe(ConfigSection):
    """One pretraining study: a ladder of tiny configs trained on one corpus and budget."""

    name: str = "pretrain"
    description: str = ""
    output_dir: str = "pretrained"
    models: list[str] = Field(min_length=1, description="config names (`scaling-repro models`)")
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    seq_len: int = Field(128, ge=8, description="tokens per packed training sequence")
    token_budget: int = Field(2_000_000, ge=1, description="training tokens per model")
    checkpoint_tokens: list[int] = Field(default_factory=list, description="export points; budget added")
    lr: float = Field(3e-3, gt=0)
    batch_size: int = Field(32, ge=1, description="sequences per optimizer step (global)")
    seed: int = 0
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(**PRETRAIN_TRAIN_DEFAULTS))

    _ints = field_validator("token_budget", mode="before")(int_like)

    @field_validator("checkpoint_tokens", mode="before")
    @classmethod
    def _ints_list(cls, value: Any) -> Any:
        return [int_like(v) for v in value] if isinstance(value, list) else value

    @field_validator("checkpoint_tokens")
    @classmethod
    def _within_budget(cls, tokens: list[int], info: ValidationInfo) -> list[int]:
        budget = info.data.get("token_budget")
        over = [t for t in tokens if t < 0 or (budget is not None and t > budget)]
        if over:
            raise ValueError(f"must lie in [0, token_budget={budget}]")
        return tokens

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: list[str]) -> list[str]:
        from scaling_repro.models.configs import CONFIG_NAMES, is_config_name

        unknown = [m for m in models if not is_config_name(m)]
        if unknown:
            raise ValueError(f"unknown config {unknown[0]!r}; allowed: {', '.join(CONFIG_NAMES)}")
        return models

    @field_validator("train", mode="before")
    @classmethod
    def _pretraining_defaults(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if "max_steps" in value or "min_steps" in value:
                raise ValueError("train.max_steps / min_steps are set by token_budget; set token_budget instead")
            return {**PRETRAIN_TRAIN_DEFAULTS, **value}
        return value

    @property
    def export_tokens(self) -> list[int]:
        """The token counts at which weights are exported, the budget included, ascending."""
        return sorted(set(self.checkpoint_tokens) | {self.token_budget})

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def steps(self) -> int:
        return -(-self.token_budget // self.tokens_per_step)


def load_pretrain_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PretrainRecipe:
    """Return the validated pretraining recipe of a YAML file (``extends:`` and ``key=value``
    overrides as for finetuning recipes), or raise RecipeError naming the field."""
    from pydantic import ValidationError

    from scaling_repro.config.recipe_file import load_recipe_dict, parse_override, set_path

    data = load_recipe_dict(path)
    for text in overrides:
        key, value = parse_override(text)
        set_path(data, key, value)
    try:
        return PretrainRecipe.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"]) or "(recipe)"
            shown = "input" in e and e["type"] != "missing" and not isinstance(e["input"], dict)
            got = f"got {e['input']!r}; " if shown else ""
            lines.append(f"{path}: {where}: {got}{e['msg'].removeprefix('Value error, ')}")
        raise RecipeError("\n".join(lines)) from None


def revision_name(tokens: int) -> str:
    """The revision (subfolder) of the checkpoint exported at ``tokens``."""
    return f"tokens-{tokens}"
