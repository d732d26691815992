"""When a run writes a resumable checkpoint besides its step cadence, and what a finished run keeps.

Step checkpoints come every ``train.checkpoint_every`` steps (at every dev evaluation by
default). At the paper's largest sizes a step can take seconds and an evaluation interval
hours, so ``train.checkpoint_minutes`` adds a checkpoint whenever that many minutes have passed
since the last one (:class:`CheckpointTimer`): a preemption without warning loses at most that
much work. A warned stop (SIGTERM, or Slurm's time-limit warning USR2) checkpoints the step
reached (:mod:`scaling_repro.train.stop`).

A step checkpoint holds the optimizer state (a 16B ZeRO-3 step checkpoint is ~160 GB). Once a
run's result is written, nothing resumes from it: :func:`drop_step_checkpoints` deletes the
step checkpoints and keeps the best weights, which evaluation and ``scaling-repro evaluate`` read.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from scaling_repro.train.checkpoint import checkpoint_dir

log = logging.getLogger(__name__)

STEP_PREFIXES = ("step-", ".tmp-step-")


class CheckpointTimer:
    """Says when ``minutes`` have passed since the last checkpoint (never when ``minutes`` is None)."""

    def __init__(self, minutes: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = None if minutes is None else minutes * 60.0
        self.clock = clock
        self.last = clock()

    def due(self) -> bool:
        """Return whether a checkpoint is due by time."""
        return self.period is not None and self.clock() - self.last >= self.period

    def saved(self) -> None:
        """Note that a checkpoint was just written: the next is due ``minutes`` from now."""
        self.last = self.clock()


def drop_step_checkpoints(run_dir: Path) -> int:
    """Delete the resumable step checkpoints of a finished run (and half-written ones), keeping
    the best weights; return the bytes freed. Call it only once the run's result is written."""
    root = checkpoint_dir(Path(run_dir))
    if not root.is_dir():
        return 0
    freed = 0
    for path in sorted(root.iterdir()):
        if path.is_dir() and not path.is_symlink() and path.name.startswith(STEP_PREFIXES):
            freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
            shutil.rmtree(path)
    if freed:
        log.info("%s: dropped the step checkpoints of the finished run (%.1f GB)", run_dir, freed / 1e9)
    return freed
