"""RunDir: one run's directory and the files scaling-repro keeps in it.

    spec.json            the RunSpec, written before training (``evaluate RUN_DIR`` rebuilds the run from it)
    result.json          the RunRecord, written last: a run with a valid one is done
    result.damaged.json  a damaged result.json, set aside when the run starts again
    result.failed.json   the previous failure of a run retried with ``--rerun-failed``
    traceback.txt        where a sweep worker's run raised

Everything else (checkpoints, logs, claims) is resumable state, never a result.

A damaged ``result.json`` (not JSON, not a RunRecord, a directory, or far too large to be a
record) is one state everywhere: the run is not done. ``run``, ``evaluate`` and sweep workers
set the file aside as ``result.damaged.json`` (kept, never trusted) and finish the run again
from its checkpoints; ``status`` counts the run as pending and names the file.

A ``result.json`` this process cannot read (no permission: a teammate's run whose modes keep
the group out; an I/O error) is not damaged: the run is *unreadable*. Nothing is done to it:
it is neither done nor failed nor pending, so no worker runs it, sets the file aside or writes
a failed record over it; ``status`` lists it as "cannot read", ``run`` and ``evaluate`` stop
with :class:`UnreadableResult`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from scaling_repro.config.recipe import RunSpec, pet_size
from scaling_repro.errors import UserError, one_line
from scaling_repro.fileio import atomic_write_json, atomic_write_text, remove_write_leftovers
from scaling_repro.ranks import is_main_process
from scaling_repro.results.record import (
    RESULT_FILE,
    RUN_DIR_NAME,
    UNREADABLE_HINT,
    ResultFile,
    RunRecord,
    read_result,
)
from scaling_repro.results.tree import walk_tree

log = logging.getLogger(__name__)

SPEC_FILE = "spec.json"
DAMAGED_RESULT_FILE = "result.damaged.json"
FAILED_RESULT_FILE = "result.failed.json"
TRACEBACK_FILE = "traceback.txt"


@dataclass(frozen=True)
class RunState:
    """What a run directory's ``result.json`` says about its run, claims aside."""

    kind: Literal["done", "failed", "pending", "unreadable"]
    record: RunRecord | None = None
    reason: str = ""  # the failure, for kind == "failed"; what stops reading, for "unreadable"
    recorded_at: float = 0.0  # unix time the result was written
    damaged: str = ""  # for a pending run whose result.json is damaged: what is wrong with it

    @property
    def permission_denied(self) -> bool:
        """True for an unreadable result this user may not read (the file itself is fine)."""
        return self.kind == "unreadable" and self.reason.startswith("PermissionError")


class UnreadableResult(UserError):
    """A run whose ``result.json`` this process cannot read: it is left as it is."""

    def __init__(self, result: ResultFile) -> None:
        hint = f": {UNREADABLE_HINT}" if result.permission_denied else ""
        super().__init__(
            f"{result.path}: cannot read it ({result.problem}); the run is left as it is, "
            f"neither run again nor set aside{hint}"
        )
        self.result = result


@dataclass(frozen=True)
class RunDir:
    """A run's directory: reads and writes its spec, its result and the copies kept beside."""

    path: Path

    @classmethod
    def of(cls, spec: RunSpec) -> RunDir:
        """Return the directory of ``spec`` (``output_dir/name/run_id``)."""
        return cls(spec.run_dir)

    @property
    def spec_file(self) -> Path:
        return self.path / SPEC_FILE

    @property
    def result_file(self) -> Path:
        return self.path / RESULT_FILE

    def write_spec(self, spec: RunSpec, recipe: Path | None = None) -> Path:
        """Write ``spec.json`` (the RunSpec, its id and its recipe file) atomically; return its path."""
        data = {
            "spec": spec.model_dump(mode="json"),
            "run_id": spec.run_id,
            "recipe": None if recipe is None else str(recipe),
        }
        atomic_write_json(self.spec_file, data)
        return self.spec_file

    def read_spec(self) -> RunSpec:
        """Return the RunSpec of ``spec.json``, placed here: its ``output_dir`` is this
        directory's grandparent, wherever the run was made. Raises UserError naming the file."""
        try:
            if not self.spec_file.is_file():
                raise UserError(f"{self.path}: no {SPEC_FILE}; is this a run directory of scaling-repro run?")
            spec = RunSpec.model_validate(json.loads(self.spec_file.read_bytes())["spec"])
        except PermissionError as err:  # a teammate's run: nothing to write again
            raise UserError(f"{self.spec_file}: cannot read it ({one_line(err)}); {UNREADABLE_HINT}") from None
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:
            raise UserError(
                f"{self.spec_file} is unreadable ({one_line(err)}); "
                "`scaling-repro run RECIPE` writes it again for the recipe's run"
            ) from None
        return spec.model_copy(update={"output_dir": str(self.path.resolve().parent.parent)})

    def read_result(self) -> ResultFile:
        """Return what ``result.json`` holds: a RunRecord, nothing, or damage."""
        return read_result(self.result_file)

    def state(self) -> RunState:
        """Return done (an ok record), failed (a failed record), pending (no record, or a
        damaged ``result.json``: ``damaged`` says what is wrong) or unreadable (a
        ``result.json`` this process cannot read: ``reason`` says why)."""
        result = self.read_result()
        if result.kind == "missing":
            return RunState("pending")
        if result.kind == "unreadable":
            return RunState("unreadable", reason=result.problem)
        if result.record is None:
            return RunState("pending", damaged=result.problem)
        record = result.record
        if record.ok:
            return RunState("done", record)
        try:
            recorded_at = datetime.fromisoformat(record.created_at).timestamp()
        except ValueError:
            recorded_at = _mtime(self.result_file)
        return RunState("failed", record, reason=record.status.removeprefix("failed:").strip(), recorded_at=recorded_at)

    def finished_record(self) -> RunRecord | None:
        """Return the RunRecord of ``result.json``, or None when the run is not done; the main
        process sets a damaged one aside first. Raises :class:`UnreadableResult` for one this
        process cannot read (nothing is changed)."""
        result = self.read_result()
        if result.kind == "unreadable":
            raise UnreadableResult(result)
        if result.kind == "damaged" and is_main_process():
            self.set_aside_damaged(result.problem)
        return result.record

    def write_result(self, record: RunRecord) -> Path:
        """Write ``record`` as ``result.json`` atomically; return its path."""
        return record.write(self.path)

    def set_aside_damaged(self, problem: str) -> Path:
        """Move a damaged ``result.json`` to ``result.damaged.json`` with a warning naming it
        and ``problem``; return the new path."""
        kept = self.path / DAMAGED_RESULT_FILE
        log.warning(
            "%s is damaged (%s): the run is not done (the file is kept as %s)",
            self.result_file,
            problem,
            kept.name,
        )
        os.replace(self.result_file, kept)
        return kept

    def set_aside_failed(self) -> Path:
        """Move a failed ``result.json`` to ``result.failed.json`` (its run is retried); return the new path."""
        kept = self.path / FAILED_RESULT_FILE
        os.replace(self.result_file, kept)
        return kept

    def write_traceback(self, text: str) -> Path:
        """Write ``traceback.txt``; return its path."""
        path = self.path / TRACEBACK_FILE
        atomic_write_text(path, text)
        return path

    def remove_write_leftovers(self, *names: str) -> list[Path]:
        """Delete what killed atomic writes of ``spec.json``, ``result.json`` and the files
        ``names`` left here; return the deleted paths. Only for the process that runs the run."""
        removed = remove_write_leftovers(self.path, [SPEC_FILE, RESULT_FILE, *names])
        for path in removed:
            log.info("removed %s, left by a write that was killed", path)
        return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def find_run_dirs(root: Path, max_depth: int = 3) -> list[Path]:
    """Return the run directories (named by a 12-hex run id) at most ``max_depth`` levels below
    ``root``, each once; a symlinked folder is followed one level
    (:mod:`scaling_repro.results.tree`), and a folder that cannot be listed is named in a
    warning."""
    if RUN_DIR_NAME.match(root.name):
        return [root]

    def is_run_dir(entry: os.DirEntry) -> bool:
        try:
            return bool(RUN_DIR_NAME.match(entry.name)) and entry.is_dir()
        except OSError:
            return False

    def unlisted(folder: Path, err: OSError) -> None:
        hint = f"; {UNREADABLE_HINT}" if isinstance(err, PermissionError) else ""
        log.warning("cannot list %s (%s): the runs in it are not counted%s", folder, one_line(err), hint)

    found = walk_tree(root, is_run_dir, max_depth=max_depth, descend_selected=False, on_error=unlisted)
    return [run.path for run in found]


def new_record(spec: RunSpec, status: str, **fields: Any) -> RunRecord:
    """Return a RunRecord of ``spec`` with ``status`` and ``fields``: its id, name, spec and the
    factors the spec fixes (task, method, model and ``seed``, the data seed ``task.seed`` that
    the analysis pools runs over)."""
    return RunRecord(
        run_id=spec.run_id,
        name=spec.name,
        status=status,
        spec=spec.model_dump(mode="json"),
        held_out=spec.held_out,
        task=spec.task.name,
        method=spec.method.kind,
        model=spec.model.name,
        seed=spec.task.seed,
        **fields,
    )


def failed_record(spec: RunSpec, reason: str, wall_seconds: float = 0.0) -> RunRecord:
    """Return the RunRecord of a run that failed before it could record anything itself."""
    return new_record(
        spec,
        f"failed: {' '.join(reason.split())}",
        pet_params=pet_size(spec.method),
        finetune_examples=spec.task.train_examples,
        wall_seconds=wall_seconds,
        hardware={"host": socket.gethostname(), "pid": os.getpid()},
    )
