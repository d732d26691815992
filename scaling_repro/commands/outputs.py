"""Checks of the folders a command writes into, before it writes: one line, not a traceback.

``--out X`` naming an existing file (or a file above X) would otherwise end in a
``FileExistsError`` or ``NotADirectoryError`` traceback from the first ``mkdir``, possibly
after minutes of work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from scaling_repro.errors import UserError

ALLOWED = "allowed: a folder (new or existing)"


def _not_a_folder(path: Path) -> str:
    if os.path.islink(path) and not path.exists():
        return "a broken symbolic link"
    return "a file" if path.is_file() else "not a folder"


def check_output_folder(path: str | Path, label: str) -> None:
    """Raise UserError naming ``label`` (``--out``, ``output_dir``) when ``path``, or a folder
    above it, exists and is not a folder; a folder, new or existing, passes."""
    path = Path(path)
    for above in (path, *path.parents):
        if not os.path.lexists(above):
            continue
        if above.is_dir():
            return
        if above == path:
            raise UserError(f"{label} {path} is {_not_a_folder(path)}; {ALLOWED}")
        raise UserError(f"{label} {path}: {above} is {_not_a_folder(above)}; {ALLOWED}")


def check_run_folders(specs: Iterable) -> None:
    """Raise UserError when the runs of ``specs`` (RunSpecs) cannot get their folders because
    their ``output_dir``, or ``output_dir/name``, exists and is not a folder. Checks each
    distinct pair once (a sweep of 100,000 runs has one or a few)."""
    seen: set[tuple[str, str]] = set()
    for spec in specs:
        key = (spec.output_dir, spec.name)
        if key in seen:
            continue
        seen.add(key)
        check_output_folder(spec.output_dir, "output_dir")
        check_output_folder(Path(spec.output_dir, spec.name), "output_dir/name")
