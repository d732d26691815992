"""Peak memory of a process tree (this process and every descendant), sampled in a thread.

Linux only (reads ``/proc``); elsewhere the peak is reported as not measured. Counts each
process's proportional set size (PSS: shared pages split among the processes sharing them), so
forked children that share the parent's pages are not counted twice; falls back to RSS.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/<pid>/task/*/children)."""
    out: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


def _memory_kb(pid: int) -> int:
    """PSS (else RSS) of one process in kB; 0 when it has exited."""
    try:
        text = (PROC / str(pid) / "smaps_rollup").read_text()
        key = "Pss:"
    except OSError:
        try:
            text = (PROC / str(pid) / "status").read_text()
        except OSError:
            return 0
        key = "VmRSS:"
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def tree_memory_bytes(root: int | None = None) -> int:
    """Summed memory of ``root`` (default this process) and all its descendants, in bytes."""
    root = os.getpid() if root is None else root
    seen, stack, total = set(), [root], 0
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _memory_kb(pid)
        stack += _children(pid)
    return total * 1024


class PeakMemory:
    """Context manager sampling :func:`tree_memory_bytes` every ``interval`` seconds;
    ``peak_bytes`` is None where /proc is unavailable."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.peak_bytes: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        value = tree_memory_bytes()
        self.peak_bytes = value if self.peak_bytes is None else max(self.peak_bytes, value)

    def __enter__(self) -> "PeakMemory":
        if not (PROC / str(os.getpid())).is_dir():
            return self

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.sample()

        self.sample()
        self._thread = threading.Thread(target=loop, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.sample()
