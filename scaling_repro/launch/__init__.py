"""Sweeps and launchers: run a recipe's grid locally, with torchrun or on Slurm.

Every backend hands each RunSpec to :func:`execute_run`, which skips finished runs, claims the
run (:mod:`.claims`, safe for concurrent workers on a shared filesystem), runs it, and records a
failure when the run could not. Backends differ only in how a run executes: :mod:`.local` (this
process, or one subprocess per GPU), :mod:`.torchrun` (one torchrun job per run), :mod:`.slurm`
(submitit array jobs). :mod:`.order` puts cheap runs first; :mod:`.status` reports progress.
"""

from scaling_repro.launch import slurm
from scaling_repro.launch.claims import Claim, ClaimInfo, read_claim, try_claim
from scaling_repro.launch.execute import RunOutcome, SweepOptions, execute_run, format_summary, plan_run
from scaling_repro.launch.local import run_local, run_specs
from scaling_repro.launch.order import estimate_cost, order_runs
from scaling_repro.launch.plan import format_local_plan, plan_sweep
from scaling_repro.launch.runners import (
    InProcessRunner,
    RunCrashed,
    RunInterrupted,
    RunTarget,
    SubprocessRunner,
)
from scaling_repro.launch.status import SweepStatus, format_status, status_of_directory, status_of_specs
from scaling_repro.launch.torchrun import run_torchrun, torchrun_command
from scaling_repro.results import RunState, failed_record

__all__ = [
    "Claim",
    "ClaimInfo",
    "InProcessRunner",
    "RunCrashed",
    "RunInterrupted",
    "RunOutcome",
    "RunState",
    "RunTarget",
    "SubprocessRunner",
    "SweepOptions",
    "SweepStatus",
    "estimate_cost",
    "execute_run",
    "failed_record",
    "format_local_plan",
    "format_status",
    "format_summary",
    "order_runs",
    "plan_run",
    "plan_sweep",
    "read_claim",
    "run_local",
    "run_specs",
    "run_torchrun",
    "slurm",
    "status_of_directory",
    "status_of_specs",
    "torchrun_command",
    "try_claim",
]
