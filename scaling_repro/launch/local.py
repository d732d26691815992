"""The local backend: runs one after another in this process, N at once on CPU cores, or one
per GPU as subprocesses.

Without GPUs listed, each run is called in this process (fast for tiny CPU runs; no isolation).
With ``jobs=N`` (N > 1) N worker threads each run one run at a time in a child process with one
torch thread (:class:`ForkedRunner`): N runs at once on N cores (measured: one
thread per process, several processes, is far faster on a few shared cores than several threads
in one process). With ``gpus=["0", "1", ...]`` each GPU gets a worker thread that runs one run at
a time as ``python -m scaling_repro run RECIPE ... --run-id ID`` with ``CUDA_VISIBLE_DEVICES``
set to that GPU: one run per GPU concurrently, for the small PET runs. ``gpus=["0"]`` is the way
to run one at a time but isolated in subprocesses. Child processes run in the working directory
their runner was made with, where the specs' relative paths (``output_dir``, model paths) are.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for_processes
from pathlib import Path

from tqdm.auto import tqdm

from scaling_repro.config.recipe import RunSpec
from scaling_repro.launch import preemption
from scaling_repro.launch.claims import Claim
from scaling_repro.launch.execute import RunOutcome, SweepOptions, execute_run
from scaling_repro.launch.runners import (
    LOG_FILE,
    ClaimLost,
    InProcessRunner,
    RunCrashed,
    RunInterrupted,
    Runner,
    RunTarget,
    SubprocessRunner,
    interrupted,
    last_line,
    open_run_log,
    python_command,
)
from scaling_repro.launch.warm import start_fork_server, synthetic_task_params

log = logging.getLogger(__name__)


class _Budget:
    """Hands out runs in order until ``max_runs`` of them have been started (thread-safe)."""

    def __init__(self, specs: Sequence[RunSpec], max_runs: int | None):
        self._specs: Iterator[RunSpec] = iter(specs)
        self._left = max_runs
        self._lock = threading.Lock()

    def next(self) -> RunSpec | None:
        with self._lock:
            if self._left is not None and self._left <= 0:
                return None
            return next(self._specs, None)

    def stop(self) -> None:
        with self._lock:
            self._left = 0

    def record(self, outcome: RunOutcome) -> None:
        with self._lock:
            if self._left is not None and outcome.ran:
                self._left -= 1


def run_specs(
    specs: Sequence[RunSpec],
    runners: Sequence[Runner],
    options: SweepOptions,
    owner: str = "local",
    progress: bool = True,
) -> list[RunOutcome]:
    """Execute ``specs`` in order with one worker thread per runner; return the outcomes in
    the order the runs were handed out. Runs after ``options.max_runs`` started, or once this
    process is preempted (SIGTERM), are not tried."""
    budget = _Budget(specs, options.max_runs)
    outcomes: list[RunOutcome] = []
    bar = tqdm(total=len(specs), desc="sweep", unit="run", disable=None if progress else True)
    lock = threading.Lock()

    def work(runner: Runner) -> None:
        while not preemption.preempting() and (spec := budget.next()) is not None:
            outcome = execute_run(spec, runner, options, owner)
            budget.record(outcome)
            with lock:
                outcomes.append(outcome)
                bar.update(1)
                bar.set_postfix({k: sum(o.kind == k for o in outcomes) for k in ("ok", "failed", "busy")})

    try:
        if len(runners) == 1:
            work(runners[0])
        else:
            with ThreadPoolExecutor(len(runners), thread_name_prefix="worker") as pool:
                futures = [pool.submit(work, runner) for runner in runners]
                try:
                    for future in futures:
                        future.result()
                except BaseException:  # Ctrl-C: start nothing new; running children got the signal too
                    budget.stop()
                    raise
    finally:
        bar.close()
    return outcomes


# What a forked child needs already imported: the whole pipeline (torch, transformers, peft,
# accelerate). Importing it costs ~5 s of CPU per process, more than a tiny run trains.
PRELOAD_MODULES = (
    "scaling_repro.logs",
    "scaling_repro.pipeline",
    "scaling_repro.data.tasks",
    "scaling_repro.models.load",
    "scaling_repro.methods",
    "scaling_repro.train.loop",
    "scaling_repro.evaluate.run",
)
SERVER_START = "scaling_repro.launch.fork_server"
"""Preloaded after :data:`PRELOAD_MODULES`: builds the caches the server was asked for."""


def _forkserver_context():
    """Return the 'forkserver' multiprocessing context whose server preloads the pipeline and
    then warms its caches, or None where the platform has no forkserver (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*PRELOAD_MODULES, SERVER_START])
    return context


def _run_forked(target: RunTarget, spec: RunSpec, log_path: str, threads: int, cwd: str) -> None:
    """Child process body: working directory ``cwd`` (the server's is whatever it started
    in), output to the run's log, ``threads`` torch threads, run the spec."""
    os.chdir(cwd)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    from scaling_repro.logs import configure_logging

    torch.set_num_threads(threads)
    configure_logging()
    try:
        target.function()(spec)
    except KeyboardInterrupt:  # resumable, like `scaling-repro run` stopped by Ctrl-C
        sys.stderr.flush()
        os._exit(130)


@dataclass(frozen=True)
class ForkedRunner:
    """Runs each spec in its own child process with ``threads`` torch threads, output appended
    to ``run_dir/run.log``, exit statuses read as :class:`SubprocessRunner` reads them.

    Children are forked from a server process that imported the pipeline once
    (``multiprocessing`` 'forkserver' with :data:`PRELOAD_MODULES`), so a run starts in
    milliseconds instead of the seconds a fresh interpreter spends importing torch and
    transformers. ``target_for`` gives each spec's RunTarget (its recipe), so runs of several
    recipes can share the workers. The server, started by the first run forked, first builds
    the synthetic task splits of ``warm_params`` (:mod:`scaling_repro.launch.warm`). Children
    run in ``cwd`` (default: this process's working directory when the runner is made).
    """

    target_for: Callable[[RunSpec], RunTarget]
    threads: int = 1
    poll_seconds: float = 0.2
    warm_params: Sequence[dict] = ()
    cwd: Path = field(default_factory=Path.cwd)

    def __call__(self, spec: RunSpec, claim: Claim) -> None:
        context = _forkserver_context()
        log_path = spec.run_dir / LOG_FILE
        log_path.parent.mkdir(parents=True, exist_ok=True)
        open_run_log(log_path).close()  # a planted link or FIFO fails the run here, in one line
        process = context.Process(
            target=_run_forked,
            args=(self.target_for(spec), spec, str(log_path.resolve()), self.threads, str(self.cwd)),
            name=f"run-{spec.run_id}",
            daemon=False,
        )
        with _PROCESS_LOCK:
            start_fork_server(self.warm_params)  # at once when it runs already
            process.start()
        try:
            claim.add_pid(process.pid)
            with preemption.forwarding_sigterm(process.pid):
                code = self._wait_unless_lost(process, claim)
        except BaseException:
            _stop_process(process)
            raise
        if interrupted(code):
            raise RunInterrupted(f"stopped by a signal (exit status {code})")
        if code != 0:
            raise RunCrashed(f"exit status {code}: {last_line(log_path)} (log: {log_path})")

    def _wait_unless_lost(self, process, claim: Claim) -> int:
        """Wait for the child; return its exit code, or stop it and raise ClaimLost when the
        claim is taken over."""
        while (code := _wait(process, self.poll_seconds)) is None:
            if claim.lost:
                _stop_process(process, checkpoint=False)
                raise ClaimLost("its claim was taken over by another worker; its process was stopped")
        return code


# multiprocessing polls every child of this process when it starts one; two worker threads
# reading one child's exit-status pipe would leave one of them a wrong status (255). Starting
# children and reading exit statuses hold this lock; waiting does not.
_PROCESS_LOCK = threading.Lock()


def _wait(process, seconds: float | None) -> int | None:
    """Wait up to ``seconds`` (None: until it ends) for a child; return its exit code or None."""
    wait_for_processes([process.sentinel], seconds)
    with _PROCESS_LOCK:
        return process.exitcode


def _stop_process(process, grace_seconds: float = 30.0, checkpoint: bool = True) -> None:
    """Stop a child: SIGTERM, then SIGKILL after the grace; without ``checkpoint`` SIGKILL at
    once (a run whose claim another worker holds must write nothing more)."""
    if _wait(process, 0) is not None:
        return
    if not checkpoint:
        process.kill()
        _wait(process, None)
        return
    process.terminate()
    if _wait(process, grace_seconds) is None:
        process.kill()
        _wait(process, None)


def cpu_runners(
    target_for: Callable[[RunSpec], RunTarget],
    jobs: int,
    threads: int = 1,
    specs: Sequence[RunSpec] = (),
    cwd: Path | None = None,
) -> list[Runner]:
    """Return ``jobs`` runners that each run one spec at a time in a child process with
    ``threads`` torch threads and working directory ``cwd`` (default: this process's): forked
    from a preloaded server where the platform allows (which, when the first run starts it,
    first builds the task splits of ``specs``), else fresh ``python -m scaling_repro run``
    subprocesses (same isolation, slower start)."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    if _forkserver_context() is not None:
        warm_params = synthetic_task_params(specs)
        return [ForkedRunner(target_for, threads, warm_params=warm_params, cwd=cwd) for _ in range(jobs)]
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return [SubprocessRunner(lambda spec: python_command(target_for(spec), spec), env, cwd=cwd) for _ in range(jobs)]


def run_local(
    specs: Sequence[RunSpec],
    target: RunTarget,
    options: SweepOptions,
    gpus: Sequence[str] | None = None,
    progress: bool = True,
    jobs: int = 1,
) -> list[RunOutcome]:
    """Run ``specs`` in order: in this process, ``jobs`` at once in one-thread child processes,
    or with ``gpus`` one subprocess per GPU at a time."""
    wide = [spec for spec in specs if spec.launch.gpus_per_node > 1]
    if wide:
        log.warning(
            "run %d asks for launch.gpus_per_node=%d but the local backend gives each run one "
            "process (and with --gpus one GPU); use --backend torchrun for multi-GPU runs",
            wide[0].index,
            wide[0].launch.gpus_per_node,
        )
    if not gpus and jobs > 1:
        runners = cpu_runners(lambda spec: target, jobs, specs=specs)
        return run_specs(specs, runners, options, f"local jobs {jobs}", progress)
    if not gpus:
        return run_specs(specs, [InProcessRunner(target)], options, "local", progress)
    runners = [
        SubprocessRunner(functools.partial(python_command, target), {"CUDA_VISIBLE_DEVICES": gpu}) for gpu in gpus
    ]
    return run_specs(specs, runners, options, f"local gpus {','.join(gpus)}", progress)
