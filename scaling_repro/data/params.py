"""Validation of ``task.params``: each task declares its options as a small pydantic model
(what they mean: :mod:`scaling_repro.data.tasks`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scaling_repro.config.recipe import MetricName
from scaling_repro.data.hub import FLORES_CODES
from scaling_repro.errors import UserError

TEST_YEARS = ("newstest2020", "newstest2021", "newstest2022")


class TaskParams(BaseModel):
    """Base of a task's options: unknown keys and non-finite numbers are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


P = TypeVar("P", bound=TaskParams)


def parse_params(model: type[P], params: Mapping[str, Any] | None, task: str) -> P:
    """Return ``params`` validated as ``model``; raise ``UserError`` naming ``task.params.X``,
    the bad value and what is allowed."""
    try:
        return model.model_validate(dict(params or {}))
    except ValidationError as err:
        problems = []
        for error in err.errors():
            field = ".".join(str(part) for part in error["loc"])
            if error["type"] == "extra_forbidden":
                allowed = ", ".join(model.model_fields) or "none"
                problems.append(f"task.params.{field} is not an option of task {task!r} (options: {allowed})")
            else:
                message = error["msg"].removeprefix("Value error, ")
                problems.append(f"task.params.{field}={error.get('input')!r}: {message}")
        raise UserError("; ".join(problems)) from None


class TrainParams(TaskParams):
    """How a task's train subset is sampled (see the module docstring)."""

    dedupe: bool = False
    short_pool: Literal["error", "whole_pool"] = "error"


class WmtParams(TrainParams):
    test_sets: list[Literal[TEST_YEARS]] = Field(default_factory=lambda: list(TEST_YEARS), min_length=1)  # type: ignore[valid-type]
    zero_shot_sources: list[Literal[tuple(FLORES_CODES)]] | None = None  # type: ignore[valid-type]


class MlsumParams(TrainParams):
    languages: list[Literal["de", "es", "fr", "en"]] = Field(
        default_factory=lambda: ["de", "es", "fr", "en"], min_length=1
    )


class FloresParams(TaskParams):
    target: Literal["de", "zh"] = "de"
    sources: list[Literal[tuple(FLORES_CODES)]] | None = None  # type: ignore[valid-type]


class LocalParams(TrainParams):
    dedupe: bool = True
    source_lang: str = "src"
    target_lang: str = "tgt"
    template: str = "{source}\n"
    metrics: list[MetricName] = Field(default_factory=lambda: ["bleu", "chrf"], min_length=1)

    @field_validator("template")
    @classmethod
    def _one_source_slot(cls, template: str) -> str:
        if template.count("{source}") != 1:
            raise ValueError("must contain '{source}' exactly once")
        return template
