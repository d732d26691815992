"""Runners: how one RunSpec is executed, in this process or as a command line.

The real work of a run is ``scaling_repro.pipeline.run_spec`` (in process) or the command
``scaling-repro run RECIPE [KEY=VALUE ...] --run-id ID`` (``python -m scaling_repro run ...``,
also under ``torchrun``). A runner is called as ``runner(spec, claim)``; it returns when the run
is over (its result.json, ok or failed, is the pipeline's to write) and raises
:class:`RunInterrupted` when the run was stopped and should simply resume later, or
:class:`ClaimLost` when it stopped the run because another worker took the claim over
(a child process is terminated; in process, training stops before its next step).
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TextIO

from scaling_repro.config.recipe import RunSpec
from scaling_repro.fileio import NotAPlainFile, open_append_text
from scaling_repro.launch import preemption
from scaling_repro.launch.claims import Claim

log = logging.getLogger(__name__)

LOG_FILE = "run.log"
# Exit statuses of a child stopped by Ctrl-C or a polite kill (Slurm preemption, scancel):
# the run is resumable, not failed.
INTERRUPTED_RETURN_CODES = frozenset({-signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, 128 + signal.SIGTERM})


def interrupted(return_code: int) -> bool:
    """Return whether a child's exit status means "interrupted, resumable": a signal status
    (:data:`INTERRUPTED_RETURN_CODES`), or any non-zero status while this worker is being
    preempted (the torchrun agent exits 1 after passing SIGTERM on to its workers)."""
    return return_code in INTERRUPTED_RETURN_CODES or (return_code != 0 and preemption.preempting())


class RunInterrupted(Exception):
    """The run was stopped (signal, claim taken over); it is not failed and resumes later."""


class ClaimLost(RunInterrupted):
    """The run was stopped because another worker took its claim over; this worker records
    nothing for it (the other worker runs it)."""


class RunCrashed(Exception):
    """A run's process died without writing its result; the message is the reason."""


class Runner(Protocol):
    def __call__(self, spec: RunSpec, claim: Claim) -> None: ...


@dataclass(frozen=True)
class RunTarget:
    """What running a spec of this recipe means; picklable, so Slurm tasks carry it.

    ``recipe`` and ``overrides`` rebuild the spec in a child process (``--run-id`` selects it).
    """

    recipe: Path
    overrides: tuple[str, ...] = ()

    def function(self) -> Callable[[RunSpec], Any]:
        """Return the in-process callable that runs one spec: the pipeline's ``run_spec``."""
        from scaling_repro.pipeline import run_spec

        return functools.partial(run_spec, sweep_source=self.recipe)

    def module_args(self, spec: RunSpec) -> list[str]:
        """Return the ``-m scaling_repro run RECIPE ... --run-id ID`` arguments that run ``spec``
        in a fresh interpreter."""
        return ["-m", "scaling_repro", "run", str(self.recipe), *self.overrides, "--run-id", spec.run_id]


def python_command(target: RunTarget, spec: RunSpec) -> list[str]:
    """Return ``python -m scaling_repro run RECIPE ... --run-id ID`` for one spec."""
    return [sys.executable, *target.module_args(spec)]


@dataclass(frozen=True)
class InProcessRunner:
    """Runs the target's function in this process (no isolation: a segfault ends the sweep).

    A DeepSpeed run goes to a child process instead: DeepSpeed leaves a process group and
    distributed environment variables behind that would turn later runs of this process into
    (one-process) distributed ones.
    """

    target: RunTarget

    def __call__(self, spec: RunSpec, claim: Claim) -> None:
        if spec.train.deepspeed:
            SubprocessRunner(functools.partial(python_command, self.target))(spec, claim)
            return
        from scaling_repro.train.stop import TrainingPreempted, TrainingStopped, stop_when

        try:
            with stop_when(lambda: claim.lost):
                self.target.function()(spec)
        except TrainingPreempted as err:
            raise RunInterrupted(str(err)) from None
        except TrainingStopped:
            if not claim.lost:
                raise
            raise ClaimLost("its claim was taken over by another worker; training stopped") from None
        if claim.lost:
            raise ClaimLost(
                "its claim was taken over by another worker after training; its result may be written twice"
            )


@dataclass(frozen=True)
class SubprocessRunner:
    """Runs ``command(spec)`` as a child process with extra ``env`` in working directory
    ``cwd`` (None: this process's), output appended to ``run_dir/run.log``. The child's pid
    joins the claim, and the child is stopped when the claim is taken over or this process is
    interrupted; SIGTERM to this worker is forwarded to it (:mod:`scaling_repro.launch.preemption`)."""

    command: Callable[[RunSpec], list[str]]
    env: Mapping[str, str] = field(default_factory=dict)
    poll_seconds: float = 0.5
    cwd: Path | None = None

    def __call__(self, spec: RunSpec, claim: Claim) -> None:
        argv = self.command(spec)
        log_path = spec.run_dir / LOG_FILE
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open_run_log(log_path) as log_file:
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            env_text = [f"{key}={value}" for key, value in self.env.items()]
            log_file.write(" ".join(["#", stamp, *env_text, shlex.join(argv)]) + "\n")
            log_file.flush()
            process = subprocess.Popen(
                argv, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **self.env}, cwd=self.cwd
            )
            try:
                claim.add_pid(process.pid)
                with preemption.forwarding_sigterm(process.pid):
                    return_code = self._wait(process, claim)
            except BaseException:
                _stop(process)
                raise
        if interrupted(return_code):
            raise RunInterrupted(f"stopped by a signal (exit status {return_code})")
        if return_code != 0:
            raise RunCrashed(f"exit status {return_code}: {last_line(log_path)} (log: {log_path})")

    def _wait(self, process: subprocess.Popen, claim: Claim) -> int:
        while True:
            try:
                return process.wait(timeout=self.poll_seconds)
            except subprocess.TimeoutExpired:
                if claim.lost:
                    _stop(process, checkpoint=False)
                    raise ClaimLost("its claim was taken over by another worker; its process was stopped") from None


def _stop(process: subprocess.Popen, grace_seconds: float = 30.0, checkpoint: bool = True) -> None:
    """Stop a child: with ``checkpoint``, SIGTERM (``scaling-repro run`` checkpoints the step it
    reached and exits), then SIGKILL if it is still there after the grace; without, SIGKILL at
    once (a run whose claim another worker holds must write nothing more)."""
    if process.poll() is not None:
        return
    if not checkpoint:
        process.kill()
        process.wait()
        return
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def open_run_log(log_path: Path) -> TextIO:
    """Open a run's log for appending, never through a link planted in a shared tree; a log that
    is not a plain file fails the run with one line naming it."""
    try:
        return open_append_text(log_path)
    except NotAPlainFile as err:
        raise RunCrashed(str(err)) from None


def last_line(path: Path, limit: int = 300) -> str:
    """Return the last non-empty line of a text file (shortened), or '' when there is none or
    it is a symbolic link."""
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if line.strip() and not line.startswith("# "):
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""
