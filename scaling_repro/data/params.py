"""Validation of ``task.params``: each task declares its options as a small pydantic model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from scaling_repro.errors import UserError


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
