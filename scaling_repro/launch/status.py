"""Where a sweep stands: done / running / failed / pending runs, GPU-hours, failures.

From a recipe every run is known, so never-started runs count as pending and the remaining
GPU-hours can be estimated. From a directory only what is on disk is known: run directories
(named by their 12-hex run id) with a result, a claim or resumable state. A run whose
``result.json`` is damaged is pending (:mod:`scaling_repro.results.rundir`); the report names it.
A run whose ``result.json`` this user cannot read (a teammate's, its modes keeping the group
out) is ``unreadable``: neither done nor failed nor pending, never suggested for
``--rerun-failed``; the report lists it with what to change (group, umask). It is counted only
when there is one.

The estimate scales finished runs' GPU-hours (``wall_seconds`` x GPUs x nodes, a CPU-only run
counting as one device) by the estimated cost of each remaining run
(:func:`scaling_repro.launch.order.estimate_cost`): GPU-hours per unit of cost measured on what
is done, times the cost of what is running or pending. Failed runs are not counted as remaining
(they run again only with ``--rerun-failed``).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from scaling_repro.config.recipe import RunSpec
from scaling_repro.launch.claims import (
    CLAIMS_DIR,
    ClaimInfo,
    claim_file,
    damaged_claim_warning,
    describe_holder,
    is_stale,
    read_claim,
)
from scaling_repro.launch.order import estimate_cost
from scaling_repro.results import DAMAGED_RESULT_FILE, RESULT_FILE, RunDir, RunRecord, find_run_dirs

log = logging.getLogger(__name__)

State = Literal["done", "running", "failed", "pending", "unreadable"]
STATES: tuple[State, ...] = ("done", "running", "failed", "pending")
"""The states every report counts; ``unreadable`` is counted only when a run has it."""
DAMAGED = f"damaged {RESULT_FILE}"  # how the detail of a pending run with a damaged result starts
CANNOT_READ = "cannot read"  # how unreadable runs are named in the report


@dataclass(frozen=True)
class RunStatus:
    """One run as seen on disk (and in the recipe, when given)."""

    run_id: str
    index: int | None
    state: State
    detail: str = ""  # failure reason, claim holder, or why a pending run has state
    spec: RunSpec | None = None
    record: RunRecord | None = None
    claim: ClaimInfo | None = None

    @cached_property
    def gpu_hours(self) -> float:
        """Device-hours this run used, from its record (0 without one)."""
        if self.record is None:
            return 0.0
        return self.record.wall_seconds * devices(self.record.spec.get("launch") or {}) / 3600


def devices(launch: dict[str, Any]) -> int:
    """GPUs x nodes of a ``launch`` section as JSON; a CPU-only run counts as one device."""
    return max(1, int(launch.get("gpus_per_node", 1) or 0)) * max(1, int(launch.get("nodes", 1) or 1))


def run_status(run_dir: Path, stale_after: float, spec: RunSpec | None = None) -> RunStatus:
    """Return the state of one run directory (a live claim wins over a failed result); a
    damaged claim file of an unfinished run is named in a logged warning."""
    run_id = spec.run_id if spec is not None else run_dir.name
    result = RunDir(run_dir).state()
    index = spec.index if spec is not None else (result.record.spec.get("index") if result.record else None)
    if result.kind == "done":  # a claim left behind changes nothing: not read
        return RunStatus(run_id, index, "done", "", spec, result.record)
    if result.kind == "unreadable":  # its owner's: nothing else of it is read either
        why = "permission" if result.permission_denied else result.reason
        return RunStatus(run_id, index, "unreadable", f"{CANNOT_READ} ({why})", spec)
    try:
        claim = read_claim(run_dir)
    except OSError as err:  # a teammate's claims this user cannot list
        log.warning("%s: cannot read its claims (%s)", run_dir, err)
        claim = None
    held = claim is not None and claim.state == "held"
    if held and claim.damaged:
        log.warning("%s", damaged_claim_warning(run_dir, claim, stale_after))
    if held and not is_stale(claim, stale_after):
        holder = describe_holder(claim)
        if claim.damaged:
            holder = f"unknown: damaged claim file {claim_file(run_dir, claim.generation)}"
        return RunStatus(run_id, index, "running", holder, spec, result.record, claim)
    if result.kind == "failed":
        return RunStatus(run_id, index, "failed", result.reason, spec, result.record, claim)
    detail = ""
    if held and claim.damaged:
        detail = f"stale damaged claim file {claim_file(run_dir, claim.generation)} (taken over by the next worker)"
    elif held:
        detail = f"stale claim of {claim.host} (taken over by the next worker)"
    elif result.damaged:
        detail = f"{DAMAGED}: {result.damaged}"
    elif _has_state(run_dir):
        detail = "interrupted: has state, resumes"
    return RunStatus(run_id, index, "pending", detail, spec, None, claim)


def _has_state(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds anything but claims (False when it cannot be listed)."""
    try:
        return run_dir.is_dir() and any(p.name != CLAIMS_DIR for p in run_dir.iterdir())
    except OSError:
        return False


@dataclass(frozen=True)
class SweepStatus:
    """The runs of a sweep and where their list came from."""

    source: str
    from_recipe: bool
    runs: tuple[RunStatus, ...]

    def counts(self) -> dict[State, int]:
        """Return how many runs are in each state (``unreadable`` only when there are some)."""
        counted = Counter(r.state for r in self.runs)
        counts: dict[State, int] = {state: counted[state] for state in STATES}
        if counted["unreadable"]:
            counts["unreadable"] = counted["unreadable"]
        return counts

    def used_gpu_hours(self) -> float:
        """Device-hours of the finished (ok) runs."""
        return sum(r.gpu_hours for r in self.runs if r.state == "done")

    def remaining_gpu_hours(self) -> float | None:
        """Estimated device-hours of the running and pending runs; None when unknown (no
        recipe, or no finished run to calibrate on)."""
        done = [r for r in self.runs if r.state == "done" and r.spec is not None and r.gpu_hours > 0]
        if not self.from_recipe or not done:
            return None
        hours_per_cost = sum(r.gpu_hours for r in done) / sum(estimate_cost(r.spec) for r in done)
        left = [r for r in self.runs if r.state in ("running", "pending") and r.spec is not None]
        return hours_per_cost * sum(estimate_cost(r.spec) for r in left)


def status_of_specs(specs: Sequence[RunSpec], source: str, stale_after: float) -> SweepStatus:
    """Return the status of every run of a recipe. Each sweep directory is listed once: a run
    without a directory is pending, with nothing more to read (a sweep directory this user
    cannot list has every run read)."""
    listed: dict[tuple[str, str], tuple[Path, set[str] | None]] = {}
    runs = []
    for spec in specs:
        key = (spec.output_dir, spec.name)  # the parent of its run_dir
        if key not in listed:
            sweep_dir = Path(*key)
            listed[key] = (sweep_dir, _subdirectories(sweep_dir))
        sweep_dir, names = listed[key]
        if names is None or spec.run_id in names:
            runs.append(run_status(sweep_dir / spec.run_id, stale_after, spec))
        else:
            runs.append(RunStatus(spec.run_id, spec.index, "pending", spec=spec))
    return SweepStatus(source, True, tuple(runs))


def _subdirectories(directory: Path) -> set[str] | None:
    """Return the names of the directories in ``directory`` (none when it does not exist), or
    None when it cannot be listed."""
    try:
        with os.scandir(directory) as entries:
            return {entry.name for entry in entries if entry.is_dir()}
    except (FileNotFoundError, NotADirectoryError):
        return set()
    except OSError as err:
        log.warning("cannot list %s (%s): reading each run of it", directory, err)
        return None


def status_of_directory(root: Path, stale_after: float) -> SweepStatus:
    """Return the status of the run directories under ``root`` (what is on disk only)."""
    runs = []
    for run_dir in find_run_dirs(root):
        status = run_status(run_dir, stale_after)
        if status.record is not None:
            try:
                status = replace(status, spec=RunSpec.model_validate(status.record.spec))
            except ValidationError:
                pass  # a record from another version of the schema: no cost estimate
        runs.append(status)
    return SweepStatus(str(root), False, tuple(runs))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_status(status: SweepStatus) -> str:
    """Return the status report: counts, GPU-hours, running runs and a table of failures."""
    counts = status.counts()
    where = "from the recipe" if status.from_recipe else "on disk"
    interrupted = sum(r.state == "pending" and r.detail.startswith("interrupted") for r in status.runs)
    damaged = [r for r in status.runs if r.state == "pending" and r.detail.startswith(DAMAGED)]
    notes = []
    if interrupted:
        notes.append(f"{interrupted} interrupted, will resume")
    if damaged:
        notes.append(f"{len(damaged)} with a damaged {RESULT_FILE}, finished again when run")
    shown = "  ".join(f"{CANNOT_READ if state == 'unreadable' else state} {n}" for state, n in counts.items())
    lines = [
        f"{status.source}: {len(status.runs)} run(s) {where}",
        "  " + shown + (f" ({'; '.join(notes)})" if notes else ""),
    ]
    used = f"  GPU-hours: {status.used_gpu_hours():.2f} used by {counts['done']} finished run(s)"
    remaining = status.remaining_gpu_hours()
    if remaining is not None:
        used += f"; about {remaining:.2f} left for {counts['running'] + counts['pending']} running or pending run(s)"
    elif not status.from_recipe:
        used += "; remaining unknown: runs never started are not on disk (pass the recipe to count them)"
    elif counts["running"] + counts["pending"]:
        used += "; remaining unknown until a run has finished"
    lines.append(used)
    running = [r for r in status.runs if r.state == "running"]
    if running:
        lines.append("running:")
        lines += _table(["index", "run_id", "worker"], [[str(r.index), r.run_id, r.detail] for r in running])
    failed = [r for r in status.runs if r.state == "failed"]
    if failed:
        lines.append("failures (retry with `scaling-repro sweep RECIPE --rerun-failed`):")
        lines += _table(["index", "run_id", "reason"], [[str(r.index), r.run_id, _short(r.detail)] for r in failed])
    if damaged:
        lines.append(f"damaged {RESULT_FILE} (kept as {DAMAGED_RESULT_FILE} when the run starts again):")
        rows = [[str(r.index), r.run_id, _short(r.detail.removeprefix(f"{DAMAGED}: "))] for r in damaged]
        lines += _table(["index", "run_id", "problem"], rows)
    unreadable = [r for r in status.runs if r.state == "unreadable"]
    if unreadable:
        lines.append(
            f"{CANNOT_READ} {RESULT_FILE} (neither done nor failed for you; no sweep reruns or moves them, "
            "--rerun-failed included):"
        )
        lines += _table(["index", "run_id", "why"], [[str(r.index), r.run_id, _short(r.detail)] for r in unreadable])
        if any(r.detail == f"{CANNOT_READ} (permission)" for r in unreadable):
            lines.append(
                "  their owner's files keep your group out: the owner fixes them with `chmod -R g+rwX DIR` (and "
                "`chgrp -R GROUP DIR` when the group differs) and runs with `umask 002` in a setgid group "
                "folder from then on; see docs/cluster.md, 'Shared folders'"
            )
    return "\n".join(lines)
