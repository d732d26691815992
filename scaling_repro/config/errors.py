"""Turn pydantic validation errors into one line per problem: field path, bad value, allowed."""

from __future__ import annotations

import reprlib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from scaling_repro.config.recipe import METHODS

_MISSING = object()
ECHO_LIMIT = 120


def short_repr(value: Any, limit: int = ECHO_LIMIT) -> str:
    """Return ``repr(value)`` cut to at most ``limit`` characters, ``...`` marking a cut.

    Long strings, big or deeply nested lists and mappings are abbreviated before they are
    printed, so echoing a huge value costs no more than echoing a small one."""
    bounded = reprlib.Repr()
    bounded.maxlevel = 3
    bounded.maxlist = bounded.maxtuple = bounded.maxset = bounded.maxfrozenset = bounded.maxdeque = 8
    bounded.maxdict = 6
    bounded.maxstring = bounded.maxlong = bounded.maxother = limit
    text = bounded.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _union_members(annotation: Any) -> list[Any]:
    """Flatten Optional/Union/Annotated into member types."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _union_members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _union_members(arg)]
    return [annotation]


def _printable(part: Any) -> str:
    """A path element as text; a key with a newline or other unprintable character as its repr,
    so that each problem stays one line."""
    text = str(part)
    text = text if text.isprintable() else repr(text)
    return text if len(text) <= 80 else text[:77] + "..."


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    return None if field is None else field.default


def _walk(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str], type[BaseModel] | None]:
    """Return the display path of ``loc`` (union tags dropped) and the model at its parent."""
    parts: list[str] = []
    model: type[BaseModel] | None = root
    parent: type[BaseModel] | None = root
    i = 0
    while i < len(loc):
        elem = loc[i]
        parent = model
        if model is None or not isinstance(elem, str) or elem not in model.model_fields:
            parts.extend(_printable(e) for e in loc[i:])
            return parts, parent
        parts.append(elem)
        members = [
            m
            for m in _union_members(model.model_fields[elem].annotation)
            if isinstance(m, type) and issubclass(m, BaseModel)
        ]
        model = members[0] if len(members) == 1 else None
        tagged = {_tag_of(m): m for m in members}
        if len(members) > 1 and i + 1 < len(loc) and loc[i + 1] in tagged:
            model = tagged[loc[i + 1]]
            i += 1  # the union tag is pydantic's, not a recipe key
        i += 1
    return parts, parent


def _describe(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    parts, parent = _walk(root, tuple(error["loc"]))
    path = ".".join(parts) or "(recipe)"
    got = error.get("input", _MISSING)
    got_text = "" if got is _MISSING else f"got {short_repr(got)}"
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = list(parent.model_fields) if parent is not None else []
        what = f"unknown field ({got_text})"
        if parent is not None and _tag_of(parent) is not None:
            what = f"not a field of method kind {_tag_of(parent)!r} ({got_text})"
        return f"{path}: {what}; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return f"{path}: required field is missing"
    if kind == "literal_error":
        return f"{path}: {got_text}; allowed: {ctx.get('expected')}"
    if kind == "union_tag_invalid":
        discriminator = ctx.get("discriminator", "kind").strip(chr(39))
        return f"{path}.{discriminator}: got {short_repr(ctx.get('tag'))}; allowed: {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return f"{path}: needs a 'kind' field; allowed kinds: {', '.join(METHODS)}"
    message = error["msg"].removeprefix("Value error, ")
    if len(message) > 400:  # a validator's message may quote the value
        message = message[:397] + "..."
    return f"{path}: {got_text}; {message}" if got_text else f"{path}: {message}"


def format_validation_error(err: ValidationError, source: str | Path, prefix: str | None = None) -> str:
    """Return one message line per validation problem, each starting with the recipe file."""
    from scaling_repro.config.recipe import RunSpec, SweepConfig

    root: type[BaseModel] = SweepConfig if prefix == "sweep" else RunSpec
    lines = []
    for error in err.errors():
        text = _describe(error, root)
        lines.append(f"{source}: {prefix + '.' if prefix else ''}{text}")
    return "\n".join(lines)
