"""Errors a user can fix. The CLI prints them as one message and exits 2, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (recipe, file, flag, data): the message says what and how to fix it."""


class RecipeError(UserError):
    """A recipe (or an override of one) that does not validate."""
