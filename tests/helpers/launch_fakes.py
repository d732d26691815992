"""Fake runs for the launch tests: no training, a RunRecord after a short sleep.

:func:`run_spec` stands in for ``scaling_repro.pipeline.run_spec``, the one function every
sweep backend runs, so the launch code under test is the production code. :func:`install`
puts it in place in the calling process; the ``fake_runs`` fixture (conftest.py) does so for
runs in the test process and in forked ``--jobs`` children, and :func:`subprocess_env` adds
``tests/helpers/fake_pipeline`` (a ``sitecustomize`` that calls :func:`install`) to ``PYTHONPATH``
for child interpreters: ``python -m scaling_repro run`` under ``--gpus`` and torchrun, a
``scaling-repro sweep`` started by a test, submitit's task processes.

What a run does is steered by marker files in its sweep directory (``spec.run_dir.parent``),
named after the run's ``task.train_examples``:

    fail-<n>   the run raises RuntimeError("fake failure")
    crash-<n>  the process exits with status 3 without writing a result
    hang-<n>   the run sleeps for two minutes (to be killed)

and by ``task.params``: ``sleep`` (seconds, default 0.05), ``gate`` (a run waits until that
many distinct processes have started a run, so concurrent workers really overlap),
``record_threads`` (the run writes its process's torch threads to ``threads-<pid>``) and
``steps`` (the run is a fake training loop of that many steps that stops when the worker
asks, as on a lost claim, and on SIGTERM as preempted, logging ``preempted``). Every run
appends ``start|end|stopped|preempted <run_id> <pid>
<CUDA_VISIBLE_DEVICES> <RANK>`` to ``<sweep dir>/executions.log``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from scaling_repro.config.recipe import RunSpec
from scaling_repro.results import RunRecord
from scaling_repro.train import stop
from tests.helpers.paths import HELPERS, pythonpath

LOG = "executions.log"


def log_event(spec: RunSpec, event: str) -> None:
    line = " ".join(
        [
            event,
            spec.run_id,
            str(os.getpid()),
            os.environ.get("CUDA_VISIBLE_DEVICES", "-"),
            os.environ.get("RANK", "-"),
        ]
    )
    spec.run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.run_dir.parent / LOG, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def events(sweep_dir: Path, event: str = "start") -> list[list[str]]:
    """Return the logged events of one kind as [run_id, pid, gpus, rank] rows."""
    path = Path(sweep_dir) / LOG
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [row[1:] for row in rows if row[0] == event]


def _wait_at_gate(spec: RunSpec, workers: int, timeout: float = 60.0) -> None:
    gate = spec.run_dir.parent / "gate"
    gate.mkdir(parents=True, exist_ok=True)
    (gate / str(os.getpid())).touch()
    deadline = time.time() + timeout
    while len(list(gate.iterdir())) < workers:
        if time.time() > deadline:
            raise TimeoutError(f"only {len(list(gate.iterdir()))} of {workers} workers arrived")
        time.sleep(0.02)


def run_spec(spec: RunSpec, sweep_source: Path | None = None) -> RunRecord:
    """Pretend to run ``spec`` (signature of the pipeline's ``run_spec``); return its RunRecord."""
    if "steps" in spec.task.params:
        return run_steps(spec)
    return run(spec)


def install() -> None:
    """Make this process's runs fake: replace ``scaling_repro.pipeline.run_spec``."""
    import scaling_repro.pipeline

    scaling_repro.pipeline.run_spec = run_spec


def run_forked(*args) -> None:
    """Body of a forked ``--jobs`` child under the ``fake_runs`` fixture (which puts it in
    place of ``scaling_repro.launch.local._run_forked``): fake runs, then the real body."""
    from scaling_repro.launch import local  # the child's own module, not patched

    install()
    local._run_forked(*args)


def run(spec: RunSpec) -> RunRecord:
    """Pretend to train ``spec``; write and return an ok RunRecord (or fail as marked)."""
    sweep_dir = spec.run_dir.parent
    marker = str(spec.task.train_examples)
    log_event(spec, "start")
    if spec.task.params.get("record_threads"):
        _record_threads(spec)
    if spec.task.params.get("gate"):
        _wait_at_gate(spec, int(spec.task.params["gate"]))
    if (sweep_dir / f"hang-{marker}").exists():
        time.sleep(120)
    time.sleep(float(spec.task.params.get("sleep", 0.05)))
    if (sweep_dir / f"fail-{marker}").exists():
        raise RuntimeError("fake failure")
    if (sweep_dir / f"crash-{marker}").exists():
        os._exit(3)
    return _write_ok(spec)


def _record_threads(spec: RunSpec) -> None:
    import torch

    (spec.run_dir.parent / f"threads-{os.getpid()}").write_text(str(torch.get_num_threads()))


def run_steps(spec: RunSpec) -> RunRecord:
    """Pretend to train in ``task.params['steps']`` steps (default 100) of ``sleep`` seconds,
    checking before each step, as the training loop does, whether the worker asked it to stop
    (then it logs ``stopped`` and raises TrainingStopped) or SIGTERM asked it to checkpoint
    and stop (it logs ``preempted`` and raises TrainingPreempted)."""
    log_event(spec, "start")
    for step in range(int(spec.task.params.get("steps", 100))):
        if stop.requested():
            log_event(spec, "stopped")
            raise stop.TrainingStopped(step)
        if stop.preemption_requested():
            log_event(spec, "preempted")
            raise stop.TrainingPreempted(step)
        time.sleep(float(spec.task.params.get("sleep", 0.05)))
    return _write_ok(spec)


def _write_ok(spec: RunSpec) -> RunRecord:
    """Return an ok RunRecord, written by rank 0 only (as under torchrun)."""
    record = RunRecord(
        run_id=spec.run_id,
        name=spec.name,
        status="ok",
        spec=spec.model_dump(mode="json"),
        task=spec.task.name,
        method=spec.method.kind,
        model=spec.model.name,
        finetune_examples=spec.task.train_examples,
        wall_seconds=3600.0 * (spec.task.train_examples or 1),
    )
    if os.environ.get("RANK", "0") == "0":
        record.write(spec.run_dir)
    log_event(spec, "end")
    return record


# --- helpers shared by the launch tests ------------------------------------------------------

FAKE_PIPELINE_DIR = HELPERS / "fake_pipeline"
EXAMPLES = (60, 50, 40, 30, 20, 10)  # recipe order is most expensive first


def write_recipe(tmp_path: Path, examples=EXAMPLES, params: dict | None = None, extra: str = "") -> Path:
    """Write a fake sweep recipe over ``task.train_examples`` whose runs go to tmp_path/runs."""
    import json

    text = (
        f"name: fake\noutput_dir: {json.dumps(str(tmp_path / 'runs'))}\n"
        f"task: {{name: synthetic_mt, params: {json.dumps(params or {})}}}\n"
        "model: {name: tiny-s}\nmethod: {kind: lora}\n"
        f"sweep:\n  grid:\n    task.train_examples: {json.dumps(list(examples))}\n{extra}"
    )
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def sweep_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "fake"


def subprocess_env() -> dict[str, str]:
    """Return the environment for child interpreters that run fake runs: this checkout (so
    ``scaling_repro`` and ``tests.helpers``) and ``tests/helpers/fake_pipeline`` (its
    ``sitecustomize`` installs the fakes) importable. Not for the ``--jobs`` forkserver, which
    outlives a test (see ``fake_runs``)."""
    return {**os.environ, "PYTHONPATH": pythonpath(FAKE_PIPELINE_DIR), "OMP_NUM_THREADS": "1"}
