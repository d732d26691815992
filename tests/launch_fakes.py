"""Fake runners for the launch tests: no training, a RunRecord after a short sleep.

Used through the sweep's testing hook (``--runner launch_fakes:run``). What a run does is
steered by marker files in its sweep directory (``spec.run_dir.parent``), named after the
run's ``task.train_examples``:

    fail-<n>   the run raises RuntimeError("fake failure")
    crash-<n>  the process exits with status 3 without writing a result
    hang-<n>   the run sleeps for two minutes (to be killed)

and by ``task.params``: ``sleep`` (seconds, default 0.05) and ``gate`` (a run waits until that
many distinct processes have started a run, so concurrent workers really overlap).
:func:`run_steps` is a fake training loop that stops when the worker asks (a lost claim).
Every call appends ``start|end <run_id> <pid> <CUDA_VISIBLE_DEVICES> <RANK>`` to
``<sweep dir>/executions.log``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from scaling_repro.config.recipe import RunSpec
from scaling_repro.results import RunRecord
from scaling_repro.train import stop

LOG = "executions.log"


def log_event(spec: RunSpec, event: str) -> None:
    line = " ".join([
        event, spec.run_id, str(os.getpid()), os.environ.get("CUDA_VISIBLE_DEVICES", "-"),
        os.environ.get("RANK", "-"),
    ])
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


def run(spec: RunSpec) -> RunRecord:
    """Pretend to train ``spec``; write and return an ok RunRecord (or fail as marked)."""
    sweep_dir = spec.run_dir.parent
    marker = str(spec.task.train_examples)
    log_event(spec, "start")
    if spec.task.params.get("gate"):
        _wait_at_gate(spec, int(spec.task.params["gate"]))
    if (sweep_dir / f"hang-{marker}").exists():
        time.sleep(120)
    time.sleep(float(spec.task.params.get("sleep", 0.05)))
    if (sweep_dir / f"fail-{marker}").exists():
        raise RuntimeError("fake failure")
    if (sweep_dir / f"crash-{marker}").exists():
        os._exit(3)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 records
        log_event(spec, "end")
        return None
    return _write_ok(spec)


def run_steps(spec: RunSpec) -> RunRecord:
    """Pretend to train in ``task.params['steps']`` steps (default 100) of ``sleep`` seconds,
    checking before each step, as the training loop does, whether the worker asked it to stop
    (then it logs ``stopped`` and raises TrainingStopped)."""
    log_event(spec, "start")
    for step in range(int(spec.task.params.get("steps", 100))):
        if stop.requested():
            log_event(spec, "stopped")
            raise stop.TrainingStopped(step)
        time.sleep(float(spec.task.params.get("sleep", 0.05)))
    return _write_ok(spec)


def _write_ok(spec: RunSpec) -> RunRecord:
    record = RunRecord(
        run_id=spec.run_id, name=spec.name, status="ok", spec=spec.model_dump(mode="json"),
        task=spec.task.name, method=spec.method.kind, model=spec.model.name,
        finetune_examples=spec.task.train_examples, wall_seconds=3600.0 * (spec.task.train_examples or 1),
    )
    record.write(spec.run_dir)
    log_event(spec, "end")
    return record


# --- helpers shared by the launch tests ------------------------------------------------------

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
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
    """The environment for child processes: this checkout and the tests directory importable."""
    paths = [str(REPO), str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "OMP_NUM_THREADS": "1"}
