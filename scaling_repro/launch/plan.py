"""What a sweep would do now: which runs it would start, in which order, and how (dry runs)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from scaling_repro.config.recipe import RunSpec
from scaling_repro.launch.execute import RunOutcome, SweepOptions, plan_run
from scaling_repro.launch.order import estimate_cost
from scaling_repro.launch.runners import RunTarget, python_command
from scaling_repro.launch.torchrun import torchrun_command


def plan_sweep(specs: Sequence[RunSpec], options: SweepOptions) -> tuple[list[RunSpec], list[RunOutcome]]:
    """Split ordered runs into those a worker would start now (at most ``options.max_runs``)
    and the outcomes of the rest (done, failed earlier, running elsewhere)."""
    todo: list[RunSpec] = []
    skipped: list[RunOutcome] = []
    for spec in specs:
        outcome = plan_run(spec, options)
        if outcome is not None:
            skipped.append(outcome)
        elif options.max_runs is None or len(todo) < options.max_runs:
            todo.append(spec)
    return todo, skipped


def describe_skipped(skipped: Sequence[RunOutcome]) -> str:
    """Return e.g. '3 done, 1 failed earlier, 0 running elsewhere' (and ', 2 with a result.json
    this user cannot read' when there are such runs)."""
    kinds = ("skipped", "skipped_failed", "busy", "unreadable")
    counts = {kind: sum(o.kind == kind for o in skipped) for kind in kinds}
    text = (
        f"{counts['skipped']} done, {counts['skipped_failed']} failed earlier (not retried), "
        f"{counts['busy']} running elsewhere"
    )
    if counts["unreadable"]:
        text += f", {counts['unreadable']} with a result.json this user cannot read (left as they are)"
    return text


def format_local_plan(
    todo: Sequence[RunSpec],
    skipped: Sequence[RunOutcome],
    target: RunTarget,
    backend: str,
    gpus: Sequence[str] | None = None,
) -> str:
    """Return the dry-run text of the local or torchrun backend: one line per run to start."""
    if backend == "torchrun":
        how = "one torchrun job at a time"
    elif gpus:
        how = f"one subprocess per GPU at a time, CUDA_VISIBLE_DEVICES one of {','.join(gpus)}"
    else:
        how = "one after another in this process (command shown for reference)"
    lines = [f"{backend}: {len(todo)} run(s) to start, {how}; {describe_skipped(skipped)}"]
    lines.append(f"  {'#':>4}  {'index':>5}  {'run_id':<12}  {'cost':>8}  command")
    for position, spec in enumerate(todo, 1):
        argv = torchrun_command(target, spec) if backend == "torchrun" else python_command(target, spec)
        command = shlex.join(["python", *argv[1:]])
        lines.append(f"  {position:>4}  {spec.index:>5}  {spec.run_id:<12}  {estimate_cost(spec):>8.2g}  {command}")
    return "\n".join(lines)
