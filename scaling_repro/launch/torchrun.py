"""The torchrun backend: each run as one ``torchrun`` job on this node, one run after another.

For FMT of big models that need every GPU of the node: a run is

    python -c AGENT --standalone --nnodes 1 --nproc_per_node N \\
        -m scaling_repro run RECIPE [KEY=VALUE ...] --run-id ID

(:data:`AGENT` is ``torchrun`` of the same interpreter, ignoring Slurm's time-limit warning
USR2, which Slurm sends to every process of the job: the agent would die of it, while its
workers checkpoint on it and the task forwards SIGTERM to the agent), with ``N`` the
recipe's ``launch.gpus_per_node`` (at least 1). ``--standalone`` gives each job its own
rendezvous port, so several sweeps on one node do not collide. Multi-node runs
(``launch.nodes > 1``) are not supported by this backend or the Slurm one yet.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence

from scaling_repro.config.recipe import RunSpec
from scaling_repro.errors import UserError
from scaling_repro.launch.execute import RunOutcome, SweepOptions
from scaling_repro.launch.local import run_specs
from scaling_repro.launch.runners import RunTarget, SubprocessRunner

AGENT = (
    "import runpy, signal; signal.signal(signal.SIGUSR2, signal.SIG_IGN); "
    "runpy.run_module('torch.distributed.run', run_name='__main__', alter_sys=True)"
)
"""``torchrun`` with USR2 ignored (a disposition its workers inherit and ``scaling-repro run`` replaces)."""


def processes_per_node(spec: RunSpec) -> int:
    """Return the worker processes of one run: one per GPU, one on a CPU-only recipe."""
    return max(1, spec.launch.gpus_per_node)


def check_single_node(specs: Sequence[RunSpec], backend: str) -> None:
    """Raise UserError when a run asks for more than one node."""
    multi = [spec for spec in specs if spec.launch.nodes > 1]
    if multi:
        raise UserError(
            f"launch.nodes={multi[0].launch.nodes} (run {multi[0].index}): the {backend} backend runs "
            "each run on one node; multi-node runs are not supported yet (set launch.nodes=1 and "
            "use up to launch.gpus_per_node GPUs with DeepSpeed ZeRO-3, train.deepspeed)"
        )


def torchrun_command(target: RunTarget, spec: RunSpec) -> list[str]:
    """Return the torchrun command line of one run (see the module docstring)."""
    check_single_node([spec], "torchrun")
    return [
        sys.executable,
        "-c",
        AGENT,
        "--standalone",
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(processes_per_node(spec)),
        *target.module_args(spec),
    ]


def run_torchrun(
    specs: Sequence[RunSpec], target: RunTarget, options: SweepOptions, progress: bool = True
) -> list[RunOutcome]:
    """Run ``specs`` one after another, each as a torchrun job; return the outcomes."""
    check_single_node(specs, "torchrun")
    runner = SubprocessRunner(functools.partial(torchrun_command, target))
    return run_specs(specs, [runner], options, "torchrun", progress)
