"""Run one RunSpec the way every backend does: skip what is done, claim, run, record the outcome.

Rules (the same for local, torchrun and Slurm workers):

- A run whose ``result.json`` says ``ok`` is done and skipped.
- A run whose ``result.json`` is damaged is not done: the file is set aside as
  ``result.damaged.json`` and the run finished again from its checkpoints
  (:mod:`scaling_repro.results.rundir`).
- A run whose ``result.json`` this worker cannot read (no permission: a teammate's run whose
  modes keep the group out) is skipped with a warning, ``--rerun-failed`` or not: it is not
  known to be unfinished, so it is neither run, nor set aside, nor recorded as failed.
- A run whose ``result.json`` says ``failed: ...`` is skipped too, unless the sweep retries
  failures (``--rerun-failed``): then failures recorded before the sweep started are retried
  (their result.json is kept as ``result.failed.json``), but not one that failed again during
  this sweep, so two workers with ``--rerun-failed`` do not retry each other's fresh failures.
- Anything else in a run directory (checkpoints) is resumable state: the run is started again
  and the trainer resumes it.
- A run is executed only under a claim (:mod:`scaling_repro.launch.claims`), so two workers
  never run the same spec at once; a worker that finds a run claimed moves on.
- A runner that raises or dies without writing result.json gets a failed RunRecord written
  for it with the reason; an interrupted run (Ctrl-C, SIGTERM) records nothing and resumes
  later.
- A worker whose claim was taken over while it ran (it was stopped or hung for longer than
  ``stale_after``) stops the run and records nothing for it: the run directory belongs to
  the new holder. The outcome is ``lost``, not failed.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from typing import Literal

from scaling_repro.config.recipe import RunSpec
from scaling_repro.launch.claims import (
    DEFAULT_STALE_AFTER,
    Claim,
    damaged_claim_warning,
    describe_holder,
    is_stale,
    read_claim,
    try_claim,
)
from scaling_repro.launch.runners import ClaimLost, RunCrashed, RunInterrupted, Runner
from scaling_repro.results import RESULT_FILE, UNREADABLE_HINT, RunDir, RunState, failed_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepOptions:
    """What a worker does with runs that are done, failed or claimed."""

    retry_failed_before: float | None = None  # unix time; failures recorded earlier are retried
    stale_after: float = DEFAULT_STALE_AFTER  # seconds without a heartbeat before a take-over
    max_runs: int | None = None  # stop starting runs after this many (per worker / submission)

    @property
    def heartbeat_seconds(self) -> float:
        return max(0.05, min(30.0, self.stale_after / 4))


OutcomeKind = Literal["ok", "failed", "skipped", "skipped_failed", "unreadable", "busy", "interrupted", "lost"]


@dataclass(frozen=True)
class RunOutcome:
    """What one worker did with one run: ran it (ok / failed), skipped it (done, failed
    earlier, a result it cannot read: ``unreadable``), found it busy (claimed by another
    worker), was interrupted, or lost its claim to another worker while running it."""

    run_id: str
    index: int
    kind: OutcomeKind
    detail: str = ""  # failure reason or why it was skipped
    seconds: float = 0.0

    @property
    def ran(self) -> bool:
        return self.kind in ("ok", "failed", "interrupted", "lost")


def _skip(spec: RunSpec, state: RunState, options: SweepOptions) -> RunOutcome | None:
    if state.kind == "done":
        return RunOutcome(spec.run_id, spec.index, "skipped", "done")
    if state.kind == "unreadable":
        hint = f"; {UNREADABLE_HINT}" if state.permission_denied else ""
        log.warning(
            "run %d (%s): cannot read %s (%s): skipped, left as it is%s",
            spec.index,
            spec.run_id,
            RunDir.of(spec).result_file,
            state.reason,
            hint,
        )
        return RunOutcome(spec.run_id, spec.index, "unreadable", f"cannot read {RESULT_FILE}: {state.reason}")
    retry = options.retry_failed_before
    if state.kind == "failed" and (retry is None or state.recorded_at >= retry):
        why = state.reason if retry is None else f"failed again during this sweep: {state.reason}"
        return RunOutcome(spec.run_id, spec.index, "skipped_failed", why)
    return None


def plan_run(spec: RunSpec, options: SweepOptions) -> RunOutcome | None:
    """Return what a worker would do with ``spec`` without running it (skipped, busy), or None
    when it would run it now. Used to plan Slurm submissions and dry runs."""
    skipped = _skip(spec, RunDir.of(spec).state(), options)
    if skipped is not None:
        return skipped
    claim = read_claim(spec.run_dir)
    if claim is not None and claim.state == "held" and claim.damaged:
        log.warning("%s", damaged_claim_warning(spec.run_dir, claim, options.stale_after))
    if claim is not None and claim.state == "held" and not is_stale(claim, options.stale_after):
        return RunOutcome(spec.run_id, spec.index, "busy", f"claimed by {describe_holder(claim)}")
    return None


def _busy(spec: RunSpec) -> RunOutcome:
    claim = read_claim(spec.run_dir)
    holder = "another worker" if claim is None or claim.state != "held" else describe_holder(claim)
    return RunOutcome(spec.run_id, spec.index, "busy", f"claimed by {holder}")


def execute_run(spec: RunSpec, runner: Runner, options: SweepOptions, owner: str = "", job: str = "") -> RunOutcome:
    """Run ``spec`` with ``runner`` unless it is done, failed earlier or claimed; return what happened.

    ``job`` names the scheduler job of this worker (see :func:`~scaling_repro.launch.claims.try_claim`):
    a claim left by the same job's previous attempt is taken over at once. Never raises for a
    failing run (it is recorded as failed); KeyboardInterrupt propagates after the claim is released.
    """
    run_dir = RunDir.of(spec)
    skipped = _skip(spec, run_dir.state(), options)
    if skipped is not None:
        return skipped
    try:
        claim = try_claim(spec.run_dir, options.stale_after, owner, job=job)
    except PermissionError as err:  # a teammate's run folder this user may not write into
        log.warning(
            "%s: cannot claim it (%s); left as it is: its owner's umask or group keeps you out "
            "(docs/cluster.md, 'Shared folders')",
            spec.run_dir,
            err.strerror,
        )
        return RunOutcome(spec.run_id, spec.index, "unreadable", f"cannot claim it ({err.strerror})")
    if claim is None:
        return _busy(spec)
    finished = False
    try:
        state = run_dir.state()  # again: another worker may have finished it meanwhile
        skipped = _skip(spec, state, options)
        if skipped is not None:
            finished = state.kind == "done"
            return skipped
        if state.kind == "failed":
            run_dir.set_aside_failed()
        elif state.damaged:
            run_dir.set_aside_damaged(state.damaged)
        outcome = _run_claimed(spec, runner, claim, options)
        finished = outcome.kind == "ok"
        return outcome
    finally:
        claim.release(finished=finished)


def _run_claimed(spec: RunSpec, runner: Runner, claim: Claim, options: SweepOptions) -> RunOutcome:
    run_dir = RunDir.of(spec)
    log.info("run %d (%s): starting in %s", spec.index, spec.run_id, spec.run_dir)
    start = time.time()
    error = ""
    try:
        with claim.kept_alive(options.heartbeat_seconds):
            runner(spec, claim)
    except ClaimLost as err:
        return _lost(spec, str(err), start)
    except RunInterrupted as err:
        log.warning("run %d (%s): interrupted (%s); it resumes when started again", spec.index, spec.run_id, err)
        return RunOutcome(spec.run_id, spec.index, "interrupted", str(err), time.time() - start)
    except RunCrashed as err:
        error = str(err)
    except Exception as err:  # one failing run must not stop the sweep
        error = f"{type(err).__name__}: {err}"
        if not _still_held(claim):
            return _lost(spec, f"its claim was taken over by another worker; the run then raised {error}", start)
        error += f" (traceback: {run_dir.write_traceback(traceback.format_exc())})"
    seconds = time.time() - start
    if not _still_held(claim):  # the run directory is the new holder's: write nothing there
        return _lost(spec, f"its claim was taken over by another worker; the run ended with: {error or 'ok'}", start)
    state = run_dir.state()
    if state.kind == "unreadable":  # written by someone else meanwhile, or by a runner under another umask
        reason = f"cannot read {RESULT_FILE} after the run ({state.reason}); nothing recorded"
        log.error("run %d (%s): %s%s", spec.index, spec.run_id, reason, f"; the run raised {error}" if error else "")
        return RunOutcome(spec.run_id, spec.index, "failed", reason, seconds)
    if state.kind == "pending":
        reason = error or f"the runner returned without writing {RESULT_FILE}"
        if state.damaged:
            kept = run_dir.set_aside_damaged(state.damaged)
            reason = error or f"the runner wrote a damaged {RESULT_FILE} ({state.damaged}), kept as {kept.name}"
        run_dir.write_result(failed_record(spec, reason, seconds))
        state = run_dir.state()
    elif error and state.kind == "done":
        log.warning("run %d (%s): runner raised after writing an ok result: %s", spec.index, spec.run_id, error)
    if state.kind == "done":
        log.info("run %d (%s): ok in %.1fs", spec.index, spec.run_id, seconds)
        return RunOutcome(spec.run_id, spec.index, "ok", "", seconds)
    log.error("run %d (%s): failed: %s", spec.index, spec.run_id, state.reason)
    return RunOutcome(spec.run_id, spec.index, "failed", state.reason, seconds)


def _still_held(claim: Claim) -> bool:
    """Check the claim once more (the last heartbeat may be seconds old); False when lost."""
    try:
        claim.heartbeat()
    except OSError as err:
        log.warning("%s: cannot check the claim: %s", claim.run_dir, err)
    return not claim.lost


def _lost(spec: RunSpec, reason: str, start: float) -> RunOutcome:
    log.error("run %d (%s): lost claim: %s; this worker records nothing for it", spec.index, spec.run_id, reason)
    return RunOutcome(spec.run_id, spec.index, "lost", reason, time.time() - start)


def format_summary(outcomes: list[RunOutcome], title: str = "sweep") -> str:
    """Return the end-of-sweep summary: counts by outcome and a table of this sweep's failures."""
    labels = {
        "ok": "ok",
        "failed": "failed",
        "skipped": "already done",
        "skipped_failed": "failed earlier (not retried; see --rerun-failed)",
        "unreadable": f"cannot read {RESULT_FILE} (left as it is; see the warnings)",
        "busy": "running in another worker",
        "interrupted": "interrupted (resumable)",
        "lost": "lost claim (taken over by another worker, which runs it)",
    }
    counts = {kind: sum(o.kind == kind for o in outcomes) for kind in labels}
    parts = [f"{counts[kind]} {label}" for kind, label in labels.items() if counts[kind]]
    lines = [f"{title}: {len(outcomes)} run(s): " + (", ".join(parts) or "nothing to do")]
    failed = [o for o in outcomes if o.kind == "failed"]
    if failed:
        lines.append("failed runs:")
        lines.append(f"  {'index':>5}  {'run_id':<12}  reason")
        lines += [f"  {o.index:>5}  {o.run_id:<12}  {o.detail}" for o in failed]
    return "\n".join(lines)
