"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half.

Every stage writes its records, specs, logs and checkpoints' metadata through here. A leaf:
it imports nothing of this package.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from pathlib import Path
from typing import Any

_TMP_SUFFIX = ".tmp"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    Writes a temporary file in the same directory, fsyncs it, renames it over ``path`` and
    fsyncs the directory. A write that raises leaves no temporary file behind; one whose
    process is killed does, and :func:`remove_write_leftovers` deletes it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: str | Path) -> None:
    """Make a rename inside ``directory`` durable (fsync of the directory); a no-op where the
    filesystem does not support it."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_write_leftovers(directory: str | Path, names: list[str]) -> list[Path]:
    """Delete the temporary files that killed :func:`atomic_write_text` calls left in
    ``directory`` for the files ``names``; return the deleted paths. Call it only where no
    other process is writing those files."""
    removed = []
    for name in names:
        for path in Path(directory).glob(f".{glob.escape(name)}.*{_TMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (see :func:`atomic_write_text`)."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
