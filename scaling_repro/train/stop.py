"""Asking training to stop between steps, from outside the training loop: a lost claim (stop
now, save nothing more) or preemption (save a checkpoint, then stop).

A sweep worker that runs a run in its own process and loses the run's claim (another worker
took it over) must stop that run without writing anything more for it. The worker wraps the
run in :func:`stop_when`; the training loop calls :func:`requested` before every step and
raises :class:`TrainingStopped` when it says so. The request is a context variable, so it
reaches the loop through any caller (the pipeline) without being passed along, and concerns
only the thread that set it. The stop request is not meant for multi-process (torchrun) training,
where every rank would have to stop at the same step.

Preemption: SIGTERM, what Slurm and torchrun send before they kill a job, and SIGUSR2,
Slurm's warning before the time limit (:data:`TIME_LIMIT_SIGNAL`, which submitit asks for),
set a flag (the handler that ``scaling-repro run`` installs); the loop checks it before every
step (all ranks agree on it), writes a checkpoint of the step it reached and raises
:class:`TrainingPreempted`; ``scaling-repro run`` then exits with :data:`EXIT_PREEMPTED`, and a
rerun resumes exactly. Without a handler USR2 would end the process at once, unsaved.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar

EXIT_PREEMPTED = 143  # 128 + SIGTERM: "interrupted, resumable" to every launcher
TIME_LIMIT_SIGNAL = signal.SIGUSR2  # Slurm's warning before the time limit (submitit's --signal=USR2@delay)
_preempted = threading.Event()
_should_stop: ContextVar[Callable[[], bool] | None] = ContextVar("should_stop", default=None)


class TrainingStopped(RuntimeError):
    """Training stopped before a step because :func:`requested` said so; nothing was saved
    for the steps after ``step``."""

    def __init__(self, step: int) -> None:
        super().__init__(f"training stopped on request after step {step}")
        self.step = step


@contextlib.contextmanager
def stop_when(should_stop: Callable[[], bool]) -> Iterator[None]:
    """Inside, training in this thread stops before its next step once ``should_stop()`` is true."""
    token = _should_stop.set(should_stop)
    try:
        yield
    finally:
        _should_stop.reset(token)


def requested() -> bool:
    """Return whether the caller of the running training asked it to stop."""
    should_stop = _should_stop.get()
    return should_stop is not None and bool(should_stop())


class TrainingPreempted(RuntimeError):
    """Training stopped at ``step`` on SIGTERM or USR2, after writing the checkpoint of that step."""

    def __init__(self, step: int) -> None:
        super().__init__(f"preempted (SIGTERM/USR2) at step {step}; its checkpoint is saved: rerun to resume")
        self.step = step


def request_preemption(signum: int | None = None, frame=None) -> None:
    """Ask training to checkpoint and stop before its next step (the SIGTERM and USR2 handler)."""
    _preempted.set()


def install_preemption_handler() -> None:
    """Make SIGTERM and the time-limit warning (:data:`TIME_LIMIT_SIGNAL`) a request to checkpoint
    and stop (:func:`request_preemption`) instead of an immediate exit. Only the main thread can
    install it."""
    signal.signal(signal.SIGTERM, request_preemption)
    signal.signal(TIME_LIMIT_SIGNAL, request_preemption)


def preemption_requested() -> bool:
    """Return whether SIGTERM, USR2 (or :func:`request_preemption`) asked this process to stop."""
    return _preempted.is_set()


def clear_preemption() -> None:
    """Forget a preemption request (for a process that goes on after handling one)."""
    _preempted.clear()
