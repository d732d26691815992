"""Peak memory of a process tree (this process and every descendant), sampled in a thread.

Linux only (reads ``/proc``); elsewhere the peak is reported as not measured. Counts each
process's proportional set size (PSS: shared pages split among the processes sharing them), so
forked children that share the parent's pages are not counted twice; falls back to RSS.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass
class PeakMemory:
    """The largest :func:`tree_memory_bytes` seen; None where /proc is unavailable."""

    peak_bytes: int | None = None

    def sample(self) -> None:
        value = tree_memory_bytes()
        self.peak_bytes = value if self.peak_bytes is None else max(self.peak_bytes, value)


@contextlib.contextmanager
def track_peak_memory(interval: float = 0.5) -> Iterator[PeakMemory]:
    """Sample the process tree's memory every ``interval`` seconds in a thread while inside."""
    peak = PeakMemory()
    if not (PROC / str(os.getpid())).is_dir():
        yield peak
        return
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            peak.sample()

    peak.sample()
    thread = threading.Thread(target=loop, name="peak-memory", daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        peak.sample()
