"""RunRecord: the one result of a run (``result.json``), written atomically; loading a results tree.

A run directory with ``result.json`` is done; everything else in it (checkpoints, logs) is
resumable state, never a result. This module imports no torch: the fitting and figure stages
read results through it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Collection, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scaling_repro.fileio import atomic_write_text

if TYPE_CHECKING:
    from scaling_repro.config.recipe import RunSpec

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
    """Return the RunRecord in ``path`` (a result.json or its run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILE
    return RunRecord.model_validate_json(path.read_text(encoding="utf-8"))


def adopt_legacy_run_dir(spec: RunSpec) -> Path | None:
    """Move a run directory made under ``spec.legacy_run_id`` (before runtime settings left
    the run identity) to ``spec.run_dir`` and give its ``result.json`` the current id; return
    the new directory, or None when there was nothing to move (or another process moved it)."""
    new = spec.run_dir
    old = new.parent / spec.legacy_run_id
    if spec.legacy_run_id == spec.run_id or new.exists() or not old.is_dir():
        return None
    try:
        old.rename(new)
    except OSError:  # another worker moved it first, or it appeared meanwhile
        return None
    log.warning(
        "run directory %s moved to %s: run ids no longer count runtime settings "
        "(micro-batch, checkpointing cadence, threads, attention kernel, DeepSpeed config)",
        old,
        new,
    )
    try:
        record = read_record(new)
    except (OSError, ValueError):
        return new
    record.model_copy(update={"run_id": spec.run_id}).write(new)
    return new


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
        try:
            record = read_record(path)
        except (OSError, ValueError, ValidationError) as err:
            reason = str(err).splitlines()[0]
            warnings.warn(f"skipping unreadable {path}: {reason}", stacklevel=2)
            log.warning("skipping unreadable %s: %s", path, reason)
            continue
        if record.ok or include_failed:
            records.append(record)
    return records
