"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half.

Every stage writes its records, specs, logs and checkpoints' metadata through here. A leaf:
it imports nothing of this package.

Files and folders get the modes any other tool would give them, 0666 and 0777 less the
umask (``tempfile`` creates them 0600 and 0700), so a team sharing a results tree can read
what each member writes.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, TextIO

_TMP_SUFFIX = ".tmp"


def _umask_from_proc() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    return None


def _umask_at_import() -> int:
    mask = _umask_from_proc()
    if mask is None:
        # Setting the umask to read it races with another thread creating a file meanwhile, so
        # this runs once, at import, and only where /proc does not say it.
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_IMPORT_UMASK = _umask_at_import()


def current_umask() -> int:
    """Return the process umask: from ``/proc/self/status`` where there is one (reading it
    changes nothing), else as it was when this module was imported."""
    mask = _umask_from_proc()
    return _IMPORT_UMASK if mask is None else mask


def make_temp_dir(parent: str | Path, prefix: str, suffix: str = "") -> Path:
    """Create and return a new folder in ``parent`` (``tempfile.mkdtemp``) with mode 0777 less
    the umask instead of 0700; a setgid bit inherited from ``parent`` is kept."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=suffix))
    try:
        inherited = os.stat(tmp).st_mode & stat.S_ISGID
        os.chmod(tmp, inherited | (0o777 & ~current_umask()))
    except BaseException:
        os.rmdir(tmp)
        raise
    return tmp


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    Writes a temporary file in the same directory (mode 0666 less the umask), fsyncs it,
    renames it over ``path`` and fsyncs the directory. A write that raises leaves no temporary
    file behind; one whose process is killed does, and :func:`remove_write_leftovers` deletes it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())  # mkstemp's 0600 hides it from the team
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


class NotAPlainFile(OSError):
    """A path a run appends to that is a symbolic link, a FIFO, a device or a folder: planted
    in a shared results tree, appending through it would write outside the run's folder, hang
    or flood. ``str()`` is one line naming the path and what it is."""

    def __str__(self) -> str:
        return f"{self.filename} {self.strerror}"


_NOT_PLAIN = {
    errno.ELOOP: "is a symbolic link; refusing to write through it (remove the link)",
    errno.EMLINK: "is a symbolic link; refusing to write through it (remove the link)",  # FreeBSD's ELOOP
    errno.ENXIO: "is a FIFO or socket, not a file (remove it)",  # a FIFO no process reads
    errno.EISDIR: "is a folder, not a file (remove it)",
}


def open_append_text(path: str | Path, encoding: str = "utf-8") -> TextIO:
    """Open ``path`` for appending text, created with mode 0666 less the umask when missing,
    never through a symbolic link (``O_NOFOLLOW``) and never blocking on a FIFO (opened
    non-blocking, then checked to be a regular file); raise :class:`NotAPlainFile` naming the
    path where it is anything but a regular file."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as err:
        if err.errno in _NOT_PLAIN and (err.errno not in (errno.ELOOP, errno.EMLINK) or os.path.islink(path)):
            raise NotAPlainFile(err.errno, _NOT_PLAIN[err.errno], str(path)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotAPlainFile(errno.EINVAL, "is not a regular file (remove it)", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "a", encoding=encoding)
    except BaseException:
        os.close(fd)
        raise
