"""Exclusive locks on a file that die with their process (one ``reproduce`` per study folder).

The lock is the kernel's ``flock`` of an open file, not the file's existence: it ends when
its block exits or the process dies, however it dies, so there are no stale lock files to
clean up; on NFS (v4, or v3 with lockd) Linux turns it into a byte-range lock that holds
across hosts. A leaf: imports nothing of this package.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path


class LockHeld(Exception):
    """Another process holds the lock: ``holder`` is what it wrote into the lock file ('' when
    it had not written it yet)."""

    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is locked by {holder or 'another process'}")
        self.path = path
        self.holder = holder


# Descriptors of the locks this process holds: a forked child closes its copies (see
# _close_locks_in_child), so that a child outliving its parent does not keep the lock.
_HELD_LOCKS: set[int] = set()
_HELD_LOCKS_GUARD = threading.Lock()
# Filesystems without flock (Lustre mounted without -o flock, some FUSE mounts) say so with these.
_NO_LOCKS = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL)


def _close_locks_in_child() -> None:
    for fd in _HELD_LOCKS:
        with contextlib.suppress(OSError):
            os.close(fd)  # closes the child's copy only; the parent keeps its lock
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_locks_in_child)


def _read_holder(fd: int, wait_seconds: float) -> str:
    """Return the lock file's text, waiting up to ``wait_seconds`` for a holder that has just
    taken the lock to write it."""
    deadline = time.monotonic() + wait_seconds
    while True:
        text = os.pread(fd, 4096, 0).decode("utf-8", errors="replace").strip()
        if text or time.monotonic() >= deadline:
            return text
        time.sleep(0.02)


@contextlib.contextmanager
def exclusive_lock(path: str | Path, holder: str = "", blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing, never removed) while inside;
    yield True, or False where the filesystem has no locks (then nothing is locked).

    ``holder`` (e.g. JSON naming the pid, host and start time) is written into the file while
    the lock is held, for :class:`LockHeld` to report. Without ``blocking``, raises
    :class:`LockHeld` at once when another process holds the lock; with it, waits. The lock is
    the kernel's: it ends when the block exits or the process dies, however it dies (no stale
    lock files), forked children do not inherit it, and on NFS it holds across hosts.
    """
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)  # the umask applies
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockHeld(path, _read_holder(fd, wait_seconds=1.0)) from None
        except OSError as err:
            if err.errno not in _NO_LOCKS:
                raise
            yield False
            return
        with _HELD_LOCKS_GUARD:
            _HELD_LOCKS.add(fd)
        try:
            if holder:
                with contextlib.suppress(OSError):  # a full disk: locked all the same, holder unnamed
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, holder.encode("utf-8"), 0)
            yield True
        finally:
            with _HELD_LOCKS_GUARD:
                _HELD_LOCKS.discard(fd)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # still locked: nobody reads a holder that has left
    finally:
        os.close(fd)  # releases the lock
