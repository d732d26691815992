"""A sweep worker's own SIGTERM: the runs it is running end interrupted, not failed.

Slurm preemption, ``scancel`` and ``kill`` send SIGTERM. Inside :func:`handled` (the sweep
command and each Slurm array task), a worker that gets it:

- marks itself *preempting* (:func:`scaling_repro.train.stop.request_preemption`, so a run
  training in this process writes the checkpoint of the step it reached and stops);
- forwards SIGTERM once to each child process that runs a run (:func:`forwarding_sigterm`)
  and keeps waiting for it: ``scaling-repro run`` checkpoints and exits 143; the torchrun
  agent passes the signal on to its workers, waits for them and exits 1;
- counts a child that then ends with any non-zero status as interrupted (:func:`preempting`
  is what the runners check), records nothing for the run and releases its claim;
- starts no further run and ends with status 143 (``stop.EXIT_PREEMPTED``).

Under Slurm every process of the job gets SIGTERM at once, so a child may get it twice.

Slurm's time-limit warning (SIGUSR2, ``signal_delay_s`` before the limit: submitit's
``--signal=USR2@delay``) is handled the same way first: the run checkpoints the step it reached
and stops. Only then does :func:`pass_on_time_limit` hand the signal to the handler that was
there before (submitit's, which requeues the task and exits), so the requeued task resumes
from that checkpoint instead of the last scheduled one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator

from scaling_repro.train import stop

log = logging.getLogger(__name__)

_children: set[int] = set()  # pids of running children; changed from worker threads, read by the handler
_time_limit = threading.Event()  # USR2 came: pass it on once the run has stopped
_time_limit_handler: list = []  # the USR2 handler that handled() replaced (submitit's under Slurm)


def preempting() -> bool:
    """Return whether this process got SIGTERM (or was asked to stop as preempted)."""
    return stop.preemption_requested()


def _signal_child(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)


def _on_sigterm(signum: int, frame=None) -> None:
    """The worker's SIGTERM handler: mark preempting and forward SIGTERM to the children, once."""
    if preempting():
        return
    stop.request_preemption()
    children = tuple(_children)
    log.warning(
        "SIGTERM: stopping as preempted; a run in this process checkpoints, SIGTERM forwarded to %d child process(es)",
        len(children),
    )
    for pid in children:
        _signal_child(pid)


def _on_time_limit(signum: int, frame=None) -> None:
    """The worker's USR2 handler: as SIGTERM (checkpoint and stop), and remember to requeue."""
    _time_limit.set()
    _on_sigterm(signum, frame)


def time_limit_warned() -> bool:
    """Return whether the time-limit warning (USR2) came inside :func:`handled`."""
    return _time_limit.is_set()


def pass_on_time_limit() -> None:
    """Call the USR2 handler :func:`handled` replaced (submitit's requeues the task and exits);
    nothing when there was none. Call it after the run has stopped and checkpointed."""
    previous = _time_limit_handler[-1] if _time_limit_handler else None
    if callable(previous):
        log.warning("time-limit warning (USR2): the run has checkpointed; passing the signal on to requeue")
        previous(stop.TIME_LIMIT_SIGNAL, None)


@contextlib.contextmanager
def forwarding_sigterm(pid: int) -> Iterator[None]:
    """Inside, a SIGTERM to this worker is forwarded to child ``pid`` (at once when it came
    before the child was registered)."""
    _children.add(pid)
    try:
        if preempting():
            _signal_child(pid)
        yield
    finally:
        _children.discard(pid)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Inside, SIGTERM and the time-limit warning USR2 preempt this worker (see the module
    docstring); afterwards the previous handlers are back and the marks are cleared. Outside the
    main thread (where no handler can be installed) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    _time_limit_handler.append(signal.signal(stop.TIME_LIMIT_SIGNAL, _on_time_limit))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(stop.TIME_LIMIT_SIGNAL, _time_limit_handler.pop())
        stop.clear_preemption()
        _time_limit.clear()
