"""The local backend: runs one after another in this process, or one per GPU as subprocesses.

Without GPUs listed, each run is called in this process (fast for tiny CPU runs; no isolation).
With ``gpus=["0", "1", ...]`` each GPU gets a worker thread that runs one run at a time as
``python -m scaling_repro run RECIPE ... --run-id ID`` with ``CUDA_VISIBLE_DEVICES`` set to
that GPU: one run per GPU concurrently, for the small PET runs. ``gpus=["0"]`` is the way to run
one at a time but isolated in subprocesses.
"""

from __future__ import annotations

import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

from tqdm.auto import tqdm

from scaling_repro.launch.execute import RunOutcome, SweepOptions, execute_run
from scaling_repro.launch.runners import InProcessRunner, Runner, RunTarget, SubprocessRunner, python_command
from scaling_repro.recipe import RunSpec

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
    the order the runs were handed out. Runs after ``options.max_runs`` started are not tried."""
    budget = _Budget(specs, options.max_runs)
    outcomes: list[RunOutcome] = []
    bar = tqdm(total=len(specs), desc="sweep", unit="run", disable=None if progress else True)
    lock = threading.Lock()

    def work(runner: Runner) -> None:
        while (spec := budget.next()) is not None:
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


def run_local(
    specs: Sequence[RunSpec],
    target: RunTarget,
    options: SweepOptions,
    gpus: Sequence[str] | None = None,
    progress: bool = True,
) -> list[RunOutcome]:
    """Run ``specs`` in order: in this process, or with ``gpus`` one subprocess per GPU at a time."""
    wide = [spec for spec in specs if spec.launch.gpus_per_node > 1]
    if wide:
        log.warning(
            "run %d asks for launch.gpus_per_node=%d but the local backend gives each run one "
            "process (and with --gpus one GPU); use --backend torchrun for multi-GPU runs",
            wide[0].index, wide[0].launch.gpus_per_node,
        )
    if not gpus:
        return run_specs(specs, [InProcessRunner(target)], options, "local", progress)
    runners = [
        SubprocessRunner(functools.partial(python_command, target), {"CUDA_VISIBLE_DEVICES": gpu})
        for gpu in gpus
    ]
    return run_specs(specs, runners, options, f"local gpus {','.join(gpus)}", progress)
