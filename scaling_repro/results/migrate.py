"""Rename run directories to the run id their spec has now (``scaling-repro migrate``).

A run directory is named by its run id, a hash of what determines the trained model. A
directory made under an earlier rule for that hash (runtime settings such as the micro-batch,
checkpoint cadence, threads, attention kernel or DeepSpeed config used to count) is named by
the old id, so ``run``, ``sweep`` and ``status`` do not see it. This module reads the spec
each run directory holds (``spec.json``, else the one in ``result.json``), computes its id and,
when that differs from the directory's name, moves the directory beside itself to the new
name and writes the new id into its ``spec.json`` and ``result.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from scaling_repro.config.recipe import RunSpec
from scaling_repro.errors import one_line
from scaling_repro.fileio import atomic_write_json
from scaling_repro.results.rundir import RunDir, find_run_dirs


@dataclass(frozen=True)
class Migration:
    """One run directory not named by its run id: where it went, or why it stayed."""

    old: Path
    new: Path | None  # None when it was left where it is
    note: str = ""  # why it was left


def spec_run_id(run_dir: RunDir) -> str:
    """Return the run id of the spec in ``spec.json``, else of the spec recorded in
    ``result.json``; raises ValueError saying why neither gives one."""
    problems = []
    try:
        return RunSpec.model_validate(json.loads(run_dir.spec_file.read_bytes())["spec"]).run_id
    except FileNotFoundError:
        problems.append("no spec.json")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:
        problems.append(f"spec.json: {one_line(err)}")
    result = run_dir.read_result()
    if result.record is not None:
        try:
            return RunSpec.model_validate(result.record.spec).run_id
        except ValidationError as err:
            problems.append(f"the spec in result.json: {one_line(err)}")
    else:
        problems.append("no result.json" if result.kind == "missing" else f"result.json: {result.problem}")
    raise ValueError("; ".join(problems))


def migrate_run_dir(path: Path) -> Migration | None:
    """Move the run directory ``path`` to the name its spec's run id gives and write that id
    into its files; return what happened, or None when it is already named by its id."""
    run_dir = RunDir(path)
    try:
        run_id = spec_run_id(run_dir)
    except ValueError as err:
        return Migration(path, None, f"no spec to compute its run id from ({err})")
    if run_id == path.name:
        return None
    new = path.parent / run_id
    if new.exists():
        return Migration(path, None, f"{new} exists too: keep one of them and delete the other")
    try:
        os.rename(path, new)
    except OSError as err:  # another process moved it, or it cannot be renamed here
        return Migration(path, None, f"cannot move it: {one_line(err)}")
    _write_run_id(RunDir(new), run_id)
    return Migration(path, new)


def _write_run_id(run_dir: RunDir, run_id: str) -> None:
    """Write ``run_id`` into the ``spec.json`` and ``result.json`` of ``run_dir`` (what is readable)."""
    try:
        data = json.loads(run_dir.spec_file.read_bytes())
    except (OSError, ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        atomic_write_json(run_dir.spec_file, {**data, "run_id": run_id})
    record = run_dir.read_result().record
    if record is not None:
        run_dir.write_result(record.model_copy(update={"run_id": run_id}))


def migrate_tree(root: Path) -> list[Migration]:
    """Migrate every run directory at most three levels below ``root``; return what moved or stayed."""
    return [m for path in find_run_dirs(root) if (m := migrate_run_dir(path)) is not None]
