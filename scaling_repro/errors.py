"""Errors a user can fix. The CLI prints them as one message and exits 2, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (recipe, file, flag, data): the message says what and how to fix it."""


class RecipeError(UserError):
    """A recipe (or an override of one) that does not validate."""


def one_line(err: BaseException) -> str:
    """Return ``err`` as one line, ``Type: message`` (a pydantic ValidationError by its first
    error), for messages that name a damaged file."""
    from pydantic import ValidationError

    text = str(err)
    if isinstance(err, ValidationError) and err.errors():
        first = err.errors()[0]
        text = first["msg"] + (f" at {'.'.join(map(str, first['loc']))}" if first["loc"] else "")
    text = " ".join(text.split())
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__
