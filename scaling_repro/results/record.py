"""RunRecord: the one result of a run (``result.json``), written atomically; reading one; loading a
results tree.

A run directory with a valid ``result.json`` is done (:mod:`scaling_repro.results.rundir` owns
the rest of the directory). This module imports no torch: the fitting and figure stages read
results through it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from scaling_repro.errors import one_line
from scaling_repro.fileio import atomic_write_text

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
SCHEMA_VERSION = 1


ZERO_SHOT_LOSS = "loss"
"""Key of the zero-shot test loss (teacher-forced over every pair, nats per target token) in
``RunRecord.zero_shot``, beside the zero-shot decoding metrics."""


class RunRecord(BaseModel):
    """Everything one run measured, with the factors the scaling laws see as plain numbers.

    Unknown keys are ignored when reading so that older code can read newer records.
    """

    model_config = ConfigDict(extra="ignore")

    schema_version: int = SCHEMA_VERSION
    run_id: str
    name: str
    status: str = Field(description="'ok' or 'failed: <reason>'")
    spec: dict[str, Any] = Field(description="the RunSpec as JSON")
    held_out: bool = False

    # Factors (what the fit sees).
    task: str
    method: Literal["full", "prompt", "lora"]
    model: str
    model_params: int | None = None
    model_params_counted: Literal["non_embedding", "total"] | None = None
    pretrain_tokens: int | None = None
    pet_params: int | None = Field(None, description="prompt length or LoRA rank; null for FMT")
    trainable_params: int | None = None
    adapted_modules: list[str] = Field(default_factory=list, description="modules LoRA wraps / prompt tuning extends")
    finetune_examples: int | None = None
    seed: int = 0

    # Measurements.
    dev_loss: float | None = Field(None, description="best dev token-level NLL (nats)")
    test_loss: float | None = Field(None, description="token-level NLL over all test sets (nats)")
    test_losses: dict[str, float] = Field(default_factory=dict, description="per test set")
    metrics: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="metric -> test set (and 'all') -> score"
    )
    zero_shot: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description=f"metric -> direction (and 'mean') -> score; {ZERO_SHOT_LOSS!r}: teacher-forced test loss (nats)",
    )
    few_shot: dict[str, dict[str, dict[str, float]]] = Field(
        default_factory=dict, description="shots -> metric -> test set -> score"
    )
    num_examples: dict[str, int] = Field(default_factory=dict, description="split -> examples")

    # Training accounting.
    best_step: int | None = None
    steps: int = 0
    epochs: float = 0.0
    tokens_seen: int = 0
    wall_seconds: float = 0.0
    tokens_per_second: float | None = None
    mfu: float | None = None
    hardware: dict[str, Any] = Field(default_factory=dict)
    packages: dict[str, str] = Field(default_factory=dict)
    git_commit: str | None = None
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    @property
    def ok(self) -> bool:
        """True when the run finished and its numbers are results."""
        return self.status == "ok"

    def write(self, run_dir: str | Path) -> Path:
        """Write ``run_dir/result.json`` atomically and return its path."""
        path = Path(run_dir) / RESULT_FILE
        atomic_write_text(path, self.model_dump_json(indent=2) + "\n")
        return path


def read_record(path: str | Path) -> RunRecord:
    """Return the RunRecord in ``path`` (a result.json or its run directory); raises OSError or
    ValueError when it cannot be read."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILE
    return RunRecord.model_validate_json(path.read_bytes())


@dataclass(frozen=True)
class ResultFile:
    """What one ``result.json`` holds: a valid record, nothing (the file is missing), or damage."""

    path: Path
    kind: Literal["recorded", "missing", "damaged"]
    record: RunRecord | None = None  # for kind == "recorded"
    problem: str = ""  # for kind == "damaged": what is wrong, in one line


def read_result(path: str | Path) -> ResultFile:
    """Return what the ``result.json`` at ``path`` holds: its RunRecord, ``missing``, or
    ``damaged`` with the problem (not JSON, not a RunRecord, or a file that cannot be read)."""
    path = path if isinstance(path, Path) else Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ResultFile(path, "missing")
    except OSError as err:  # there but unreadable (permissions, I/O, a directory)
        return ResultFile(path, "damaged", problem=one_line(err))
    try:
        return ResultFile(path, "recorded", RunRecord.model_validate_json(data))
    except ValueError as err:
        return ResultFile(path, "damaged", problem=one_line(err))


def iter_result_files(root: str | Path, run_dirs: Collection[str | Path] | None = None) -> Iterator[Path]:
    """Yield every ``result.json`` under ``root`` in sorted order; with ``run_dirs``, only those
    of these run directories."""
    wanted = None if run_dirs is None else {Path(d).resolve() for d in run_dirs}
    for path in sorted(Path(root).rglob(RESULT_FILE)):
        if wanted is None or path.parent.resolve() in wanted:
            yield path


def load_results(
    root: str | Path, include_failed: bool = False, run_dirs: Collection[str | Path] | None = None
) -> list[RunRecord]:
    """Return the RunRecords under ``root`` (with ``run_dirs``, only those of these run
    directories); unreadable files are skipped with a warning.

    Failed runs are left out unless ``include_failed``.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"results directory {root} does not exist")
    records = []
    for path in iter_result_files(root, run_dirs):
        result = read_result(path)
        if result.kind == "missing":  # removed since it was listed
            continue
        if result.record is None:
            warnings.warn(f"skipping unreadable {path}: {result.problem}", stacklevel=2)
            log.warning("skipping unreadable %s: %s", path, result.problem)
            continue
        if result.record.ok or include_failed:
            records.append(result.record)
    return records
