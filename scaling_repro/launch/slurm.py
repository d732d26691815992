"""The Slurm backend: one submitit array job per distinct ``launch`` section (usually one).

Each array task runs one RunSpec on its allocated node through the same
:func:`~scaling_repro.launch.execute.execute_run` as a local worker (skip if done, claim, run,
record a failure), in the task's process for runs of at most one GPU, as a single-node torchrun
job for more. Resources come from the recipe's ``launch`` section:

    launch.time_minutes -> timeout_min        launch.partition   -> slurm_partition
    launch.gpus_per_node -> gpus_per_node     launch.account     -> slurm_account
    launch.cpus_per_task -> cpus_per_task     launch.slurm_extra -> slurm_additional_parameters
      (unset: 8 per GPU, :func:`cpus_per_task`)
    launch.mem_gb       -> mem_gb             (nodes = 1, tasks_per_node = 1)
      (unset: the partition's default)

A task is requeued after its time limit (submitit ``Checkpointable``, at most
:func:`max_timeouts` times) and, where the cluster requeues preempted jobs, after preemption;
the trainer resumes from its checkpoint. Submitit asks Slurm for the time-limit warning USR2
:func:`signal_delay_s` before the limit; on it the run checkpoints the step it reached and stops,
and only then does the task let submitit requeue it (:mod:`~scaling_repro.launch.preemption`).
On SIGTERM the task passes the signal on to its run, records the run as interrupted and exits 143. The
claim names the Slurm job (:func:`slurm_job_id`), so the requeued task takes it over at once
on any host. Submitit keeps its pickles and logs under
``<sweep dir>/slurm/<job id>``. ``cluster="local"`` or ``"debug"`` runs the same submission
with submitit's local executors (how the tests exercise it).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaling_repro.config.recipe import LaunchConfig, RunSpec
from scaling_repro.errors import UserError
from scaling_repro.launch import preemption
from scaling_repro.launch.cost import gpu_hours, matmul_params
from scaling_repro.launch.execute import RunOutcome, SweepOptions, execute_run
from scaling_repro.launch.order import estimate_cost
from scaling_repro.launch.runners import InProcessRunner, RunTarget, SubprocessRunner
from scaling_repro.launch.torchrun import check_single_node, torchrun_command
from scaling_repro.train.stop import EXIT_PREEMPTED

log = logging.getLogger(__name__)

SLURM_DIR = "slurm"
CLUSTERS = ("slurm", "local", "debug")


CPUS_PER_GPU = 8
"""CPUs a task gets per GPU when ``launch.cpus_per_task`` is unset (8 for a CPU-only task).
Every rank is a process with its own Python loop (batching, tokenisation, logging) and torch
CPU threads, so the cluster's usual default of one CPU per task stalls an 8-GPU run; 8 per GPU
stays below the cores per GPU of common GPU nodes (a DGX H100 has 112 for 8 GPUs)."""
MIN_TIMEOUT_REQUEUES = 30
"""Requeues after a time limit that every task may use at least (submitit ``max_num_timeout``)."""
TIMEOUT_MARGIN = 3
"""Factor on the estimated number of time limits a run needs (its MFU is an assumption)."""


CHECKPOINT_WRITE_GB_PER_S = 0.5
"""Write speed assumed for a step checkpoint on a shared filesystem (a conservative figure)."""
STEP_CHECKPOINT_BYTES_PER_PARAM = 10
"""A step checkpoint's size per model parameter for FMT: bf16 weights (2), Adafactor's factored
moments and fp32 master weights under ZeRO (~8); a 16B model writes ~160 GB. PET saves only
its trainable parameters but the same margin is kept."""
MIN_SIGNAL_DELAY_S = 180
"""The least warning before the time limit: the step in flight, then a checkpoint."""


def signal_delay_s(specs: Sequence[RunSpec]) -> int:
    """Return how many seconds before the time limit Slurm sends USR2 (submitit
    ``slurm_signal_delay_s``): the time to finish a step and write the largest run's step
    checkpoint at :data:`CHECKPOINT_WRITE_GB_PER_S`, doubled, at least :data:`MIN_SIGNAL_DELAY_S`."""
    params = max(matmul_params(spec.model.name) for spec in specs)
    write_s = params * STEP_CHECKPOINT_BYTES_PER_PARAM / (CHECKPOINT_WRITE_GB_PER_S * 1e9)
    return max(MIN_SIGNAL_DELAY_S, math.ceil(2 * write_s))


def cpus_per_task(launch: LaunchConfig) -> int:
    """Return the CPUs of one task: ``launch.cpus_per_task``, else :data:`CPUS_PER_GPU` per GPU."""
    if launch.cpus_per_task is not None:
        return launch.cpus_per_task
    return CPUS_PER_GPU * max(1, launch.gpus_per_node)


def max_timeouts(specs: Sequence[RunSpec]) -> int:
    """Return how often a task of these runs may be requeued after reaching its time limit:
    :data:`TIMEOUT_MARGIN` x the time limits the longest run needs at its estimated GPU-hours
    (:func:`scaling_repro.launch.cost.gpu_hours` over its GPUs), at least :data:`MIN_TIMEOUT_REQUEUES`."""
    needed = max(
        gpu_hours(spec) / max(1, spec.launch.gpus_per_node) / (spec.launch.time_minutes / 60.0) for spec in specs
    )
    return max(MIN_TIMEOUT_REQUEUES, math.ceil(TIMEOUT_MARGIN * needed))


def executor_parameters(launch: LaunchConfig, name: str, array_parallelism: int | None = None) -> dict[str, Any]:
    """Return the ``AutoExecutor.update_parameters`` keywords of runs with this ``launch``."""
    parameters: dict[str, Any] = {
        "name": name,
        "timeout_min": launch.time_minutes,
        "nodes": launch.nodes,
        "tasks_per_node": 1,
        "gpus_per_node": launch.gpus_per_node,
        "cpus_per_task": cpus_per_task(launch),
    }
    if launch.mem_gb is not None:
        parameters["mem_gb"] = launch.mem_gb
    if launch.partition is not None:
        parameters["slurm_partition"] = launch.partition
    if launch.account is not None:
        parameters["slurm_account"] = launch.account
    if launch.slurm_extra:
        parameters["slurm_additional_parameters"] = dict(launch.slurm_extra)
    if array_parallelism is not None:
        parameters["slurm_array_parallelism"] = array_parallelism
    return parameters


@dataclass(frozen=True)
class ArrayJob:
    """One array job to submit: its executor parameters, its tasks (runs) in order, and how
    often a task may be requeued after its time limit (submitit ``max_num_timeout``)."""

    parameters: dict[str, Any]
    specs: tuple[RunSpec, ...]
    max_timeouts: int = MIN_TIMEOUT_REQUEUES


def plan_arrays(specs: Sequence[RunSpec], array_parallelism: int | None = None) -> list[ArrayJob]:
    """Group runs by their ``launch`` section, keeping run order within and between groups;
    return one ArrayJob per group."""
    check_single_node(specs, "slurm")
    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.launch.model_dump_json(), []).append(spec)
    return [
        ArrayJob(
            {
                **executor_parameters(group[0].launch, group[0].name, array_parallelism),
                "slurm_signal_delay_s": signal_delay_s(group),
            },
            tuple(group),
            max_timeouts(group),
        )
        for group in groups.values()
    ]


def task_runner(target: RunTarget, spec: RunSpec):
    """Return how an array task executes ``spec``: in process up to one GPU, else torchrun."""
    if spec.launch.gpus_per_node <= 1:
        return InProcessRunner(target)
    return SubprocessRunner(functools.partial(torchrun_command, target))


def describe_runner(target: RunTarget, spec: RunSpec) -> str:
    """Return a one-line description of what an array task executes (for dry runs)."""
    if spec.launch.gpus_per_node <= 1:
        return "in the task's process: scaling_repro.pipeline:run_spec"
    return shlex.join(["torchrun", *torchrun_command(target, spec)[3:]])  # [python, -c, AGENT, ...]: torchrun


def slurm_job_id(environ: Mapping[str, str] = os.environ) -> str:
    """Return the id of this Slurm job that stays the same when Slurm requeues it:
    ``ARRAYJOB_TASK`` for an array task, the job id otherwise, '' outside Slurm."""
    array_job, array_task = environ.get("SLURM_ARRAY_JOB_ID"), environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and array_task:
        return f"{array_job}_{array_task}"
    return environ.get("SLURM_JOB_ID", "")


class SlurmTask:
    """The body of one array task (requeued with the same arguments on preemption/timeout)."""

    def __call__(self, spec: RunSpec, target: RunTarget, options: SweepOptions) -> RunOutcome:
        """Execute ``spec`` as a sweep worker; return its outcome. On SIGTERM the run ends
        interrupted and the task exits with status 143 instead of returning."""
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        job = slurm_job_id()
        restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
        owner = f"slurm job {job} (restart {restarts})" if job else "submitit task"
        with preemption.handled():
            outcome = execute_run(spec, task_runner(target, spec), options, owner, job=job)
            if outcome.kind == "interrupted" and preemption.time_limit_warned():
                preemption.pass_on_time_limit()  # submitit requeues the task and exits
            if outcome.kind == "interrupted" and preemption.preempting():
                log.warning("run %s: interrupted by SIGTERM; exiting with status %d", spec.run_id, EXIT_PREEMPTED)
                raise SystemExit(EXIT_PREEMPTED)
        return outcome

    def checkpoint(self, *args: Any, **kwargs: Any):
        """Requeue the task as it was: the run resumes from the trainer's checkpoint."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


def submit(
    arrays: Sequence[ArrayJob],
    target: RunTarget,
    options: SweepOptions,
    folder: str | Path,
    cluster: str = "slurm",
) -> list[Any]:
    """Submit each array job with submitit; return the submitit jobs, one per run."""
    if cluster not in CLUSTERS:
        raise ValueError(f"unknown cluster {cluster!r}; allowed: {', '.join(CLUSTERS)}")
    jobs: list[Any] = []
    task = SlurmTask()
    for array in arrays:
        executor = _executor(folder, cluster, array.max_timeouts)
        executor.update_parameters(**array.parameters)
        n = len(array.specs)
        submitted = executor.map_array(task, list(array.specs), [target] * n, [options] * n)
        log.info("submitted %d task(s) as job %s", n, submitted[0].job_id.split("_")[0] if submitted else "-")
        jobs.extend(submitted)
    return jobs


def _executor(folder: str | Path, cluster: str, max_timeouts: int) -> Any:
    """Return a submitit AutoExecutor for ``cluster`` whose tasks may be requeued
    ``max_timeouts`` times after their time limit (the debug executor never requeues)."""
    import submitit

    requeues = {"slurm_max_num_timeout": max_timeouts, "local_max_num_timeout": max_timeouts}
    try:
        return submitit.AutoExecutor(folder=Path(folder) / "%j", cluster=cluster, **requeues)
    except RuntimeError as err:  # no srun: not on a Slurm cluster
        raise UserError(f"cannot submit to Slurm ({err}); see what would be submitted with --dry-run") from None


def wait(jobs: Sequence[Any], specs: Sequence[RunSpec]) -> list[RunOutcome]:
    """Wait for submitted jobs; return their outcomes (a task that died is 'interrupted':
    its run has no result and resumes when submitted again)."""
    outcomes = []
    for job, spec in zip(jobs, specs):
        try:
            outcomes.append(job.result())
        except Exception as err:  # node failure, timeout without requeue, cancelled
            reason = " ".join(str(err).split())[:300]
            outcomes.append(RunOutcome(spec.run_id, spec.index, "interrupted", f"job {job.job_id}: {reason}"))
    return outcomes


def format_plan(arrays: Sequence[ArrayJob], target: RunTarget, folder: str | Path) -> str:
    """Return the dry-run text: per array job its submitit parameters and its tasks."""
    total = sum(len(a.specs) for a in arrays)
    lines = [f"slurm: {len(arrays)} array job(s), {total} task(s); submitit folder {Path(folder) / '%j'}"]
    for number, array in enumerate(arrays, 1):
        lines.append(f"array job {number}: {len(array.specs)} task(s)")
        lines.append("  submitit parameters:")
        lines += [f"    {key}: {value}" for key, value in sorted(array.parameters.items())]
        lines.append(f"  requeues after the time limit: at most {array.max_timeouts} (submitit max_num_timeout)")
        lines.append(f"  {'task':>6}  {'index':>5}  {'run_id':<12}  {'cost':>8}  executes")
        for task_id, spec in enumerate(array.specs):
            lines.append(
                f"  {task_id:>6}  {spec.index:>5}  {spec.run_id:<12}  {estimate_cost(spec):>8.2g}  "
                f"{describe_runner(target, spec)}"
            )
    return "\n".join(lines)
