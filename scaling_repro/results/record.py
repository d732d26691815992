"""RunRecord: the one result of a run (``result.json``), written atomically; reading one; loading a
results tree.

A run directory with a valid ``result.json`` is done (:mod:`scaling_repro.results.rundir` owns
the rest of the directory). A ``result.json`` this process may not read (a teammate's, kept from
the group by its modes) is *unreadable*, not damaged: nobody reruns it, sets it aside or
records a failure for it because of that. This module imports no torch: the fitting and figure
stages read results through it.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scaling_repro.errors import one_line
from scaling_repro.fileio import atomic_write_text
from scaling_repro.results.tree import Found, walk_tree

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
SCHEMA_VERSION = 1
RUN_DIR_NAME = re.compile(r"^[0-9a-f]{12}$")  # a run id: the name of its run directory
UNREADABLE_HINT = (
    "not a damaged file: its owner's umask or group keeps you out (a team's results need "
    "umask 002 in a setgid group folder; see docs/cluster.md, 'Shared folders')"
)
"""What a permission error on a result means, for the messages that name one."""
MAX_RESULT_BYTES = 1 << 20
"""A ``result.json`` larger than this (1 MiB; a record is a few KB) is damaged and is not read:
validating a file of 100 MB would build millions of error objects."""


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
    optimizer: str | None = Field(
        None,
        description="the optimizer mathematics that ran: 'adafactor (factored)' (the paper's), "
        "'adafactor (unfactored, per-partition clipping under ZeRO-k)', 'adamw'; null in older records",
    )
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
    """What one ``result.json`` holds: a valid record, nothing (the file is missing), damage, or
    nothing this process can read (``unreadable``: no permission, an I/O error)."""

    path: Path
    kind: Literal["recorded", "missing", "damaged", "unreadable"]
    record: RunRecord | None = None  # for kind == "recorded"
    problem: str = ""  # for kind == "damaged" or "unreadable": what is wrong, in one line

    @property
    def permission_denied(self) -> bool:
        """True for a file this user may not read (the file is fine; its modes keep them out)."""
        return self.kind == "unreadable" and self.problem.startswith("PermissionError")


def _size_text(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 10**7 else f"{size / 1e6:.1f} MB"


def _validation_problem(err: ValidationError) -> str:
    """``err`` in one line: its first error and how many more there are (not every error
    formatted, as ``str(err)`` does; the size limit bounds how many there can be)."""
    errors = err.errors(include_url=False, include_context=False, include_input=False)
    first = errors[0] if errors else {"msg": "invalid", "loc": ()}
    where = f" at {'.'.join(map(str, first['loc']))}" if first["loc"] else ""
    more = f" (and {err.error_count() - 1} more errors)" if err.error_count() > 1 else ""
    return f"ValidationError: {' '.join(str(first['msg']).split())[:300]}{where}{more}"


def read_result(path: str | Path) -> ResultFile:
    """Return what the ``result.json`` at ``path`` holds: its RunRecord, ``missing``,
    ``damaged`` with the problem (not JSON, not a RunRecord, a directory, or larger than
    :data:`MAX_RESULT_BYTES`, which is not read), or ``unreadable`` (an OSError: the file may
    be fine, this process cannot read it now)."""
    path = path if isinstance(path, Path) else Path(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_RESULT_BYTES:
                problem = f"{RESULT_FILE} is {_size_text(size)}; a record is a few KB (not read)"
                return ResultFile(path, "damaged", problem=problem)
            data = handle.read(MAX_RESULT_BYTES + 1)
    except FileNotFoundError:
        return ResultFile(path, "missing")
    except IsADirectoryError as err:
        return ResultFile(path, "damaged", problem=one_line(err))
    except OSError as err:  # permissions, I/O: the file is not known to be damaged
        return ResultFile(path, "unreadable", problem=one_line(err))
    if len(data) > MAX_RESULT_BYTES:  # grown since its size was read
        return ResultFile(path, "damaged", problem=f"{RESULT_FILE} is over {_size_text(MAX_RESULT_BYTES)}")
    try:
        return ResultFile(path, "recorded", RunRecord.model_validate_json(data))
    except ValidationError as err:
        return ResultFile(path, "damaged", problem=_validation_problem(err))
    except ValueError as err:
        return ResultFile(path, "damaged", problem=one_line(err))


def iter_result_files(root: str | Path, run_dirs: Collection[str | Path] | None = None) -> Iterator[Path]:
    """Yield every ``result.json`` under ``root`` in sorted order (a symlinked folder followed
    one level, a file reached by several paths once: see :mod:`scaling_repro.results.tree`);
    with ``run_dirs``, only those of these run directories."""
    for found in _result_files(root, run_dirs):
        yield found.path


def _result_files(
    root: str | Path,
    run_dirs: Collection[str | Path] | None,
    on_error: Callable[[Path, OSError], None] | None = None,
) -> list[Found]:
    wanted = None if run_dirs is None else {os.path.realpath(d) for d in run_dirs}

    def unlisted(folder: Path, err: OSError) -> None:  # named when it may hold a wanted run
        real = os.path.realpath(folder).rstrip(os.sep) + os.sep
        if on_error is not None and (wanted is None or any((w + os.sep).startswith(real) for w in wanted)):
            on_error(folder, err)

    found = walk_tree(root, lambda entry: entry.name == RESULT_FILE, on_error=unlisted)
    return found if wanted is None else [f for f in found if f.real_parent in wanted]


def _unlisted_folder(folder: Path, err: OSError) -> None:
    hint = f" ({UNREADABLE_HINT})" if isinstance(err, PermissionError) else ""
    _skip(f"skipping unreadable {folder}: cannot list the folder ({one_line(err)}){hint}")


def load_results(
    root: str | Path, include_failed: bool = False, run_dirs: Collection[str | Path] | None = None
) -> list[RunRecord]:
    """Return the RunRecords under ``root`` (with ``run_dirs``, only those of these run
    directories), each run once; what is left out is named in a warning:

    - a file that cannot be read, or is damaged; a folder that cannot be listed;
    - a record in a folder named by another run id (a ``result.json`` copied or linked from
      another run: its numbers are not that run's);
    - a copy of a record (the same recipe name and run id, e.g. ``cp -a RUN RUN.bak``): the
      one in the folder named by its run id is kept, the others skipped.

    Failed runs are left out unless ``include_failed``.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"results directory {root} does not exist")
    copies: dict[tuple[str, str], list[tuple[Found, RunRecord]]] = {}
    for found in _result_files(root, run_dirs, on_error=_unlisted_folder):
        path = found.path
        result = read_result(path)
        if result.kind == "missing":  # removed since it was listed
            continue
        if result.record is None:
            hint = f" ({UNREADABLE_HINT})" if result.permission_denied else ""
            _skip(f"skipping unreadable {path}: {result.problem}{hint}")
            continue
        record = result.record
        folder = path.parent.name
        if folder != record.run_id and RUN_DIR_NAME.match(folder):
            _skip(f"skipping {path}: it records run {record.run_id}, not {folder} (copied or linked from another run?)")
            continue
        copies.setdefault((record.name, record.run_id), []).append((found, record))
    kept = []
    for same in copies.values():
        found, record = min(same, key=lambda item: _preference(*item))
        for other, _ in same:
            if other is not found:
                _skip(f"skipping {other.path}: a copy of run {record.run_id} ({found.path}), counted once")
        kept.append((found.path, record))
    return [record for _, record in sorted(kept, key=lambda item: item[0]) if record.ok or include_failed]


def _preference(found: Found, record: RunRecord) -> tuple[bool, bool, bool, str]:
    """Sort key of copies of one record, the one to keep first: in the folder named by its run
    id, in its recipe's folder, reached through no symlink, first by path."""
    folder = found.path.parent
    return (folder.name != record.run_id, folder.parent.name != record.name, found.linked, str(found.path))


def _skip(message: str) -> None:
    warnings.warn(message, stacklevel=3)
    log.warning("%s", message)
