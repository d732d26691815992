"""Asking in-process training to stop between steps, from outside the training loop.

A sweep worker that runs a run in its own process and loses the run's claim (another worker
took it over) must stop that run without writing anything more for it. The worker wraps the
run in :func:`stop_when`; the training loop calls :func:`requested` before every step and
raises :class:`TrainingStopped` when it says so. The request is a context variable, so it
reaches the loop through any caller (the pipeline) without being passed along, and concerns
only the thread that set it. Nothing here is meant for multi-process (torchrun) training,
where every rank would have to stop at the same step.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Callable, Iterator

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
