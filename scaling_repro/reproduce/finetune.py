"""The finetuning stage of a study: every run of the plan that is not done, through the sweep
workers (:mod:`scaling_repro.launch`), so a study has the skip and claim rules of a sweep.

Where the runs execute (:class:`Execution`): on CPU ``jobs`` one-thread child processes; with
GPUs one run per GPU as a subprocess, a run whose ``launch.gpus_per_node`` is above one as a
torchrun job over that many of the GPUs while no one-GPU run holds them; or as Slurm array jobs
(one per recipe and launch section). Children run in the study folder, where the recipes'
relative paths are.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scaling_repro.config.recipe import RunSpec
from scaling_repro.config.study_plan import RUNS_DIR, StudyPlan
from scaling_repro.errors import UserError
from scaling_repro.launch.claims import Claim
from scaling_repro.launch.runners import RunTarget, SubprocessRunner, python_command
from scaling_repro.reproduce.plan_runs import write_inline_recipes
from scaling_repro.reproduce.stages import StageResult


@dataclass(frozen=True)
class Execution:
    """Where the finetuning runs of a study execute."""

    backend: Literal["local", "slurm"] = "local"
    jobs: int = 2  # CPU child processes (no GPUs)
    gpus: tuple[str, ...] = ()
    slurm_folder: str = "slurm"
    cluster: str = "slurm"
    array_parallelism: int | None = None

    @classmethod
    def of(cls, plan: StudyPlan, jobs: int, gpus: Sequence[str] | None = None, backend: str | None = None):
        """Return the plan's launch section with the command line's ``gpus`` / ``backend`` over it."""
        launch = plan.launch
        chosen = backend or launch.backend
        if chosen not in ("local", "slurm"):
            raise UserError(f"--backend {chosen}: allowed: local, slurm")
        return cls(
            chosen,  # type: ignore[arg-type]
            jobs,
            tuple(launch.gpus if gpus is None else gpus),
            launch.slurm_folder,
            launch.cluster,
            launch.array_parallelism,
        )

    def describe(self) -> str:
        """Return e.g. '2 CPU processes' or 'GPUs 0,1 (one PET run each; torchrun for FMT on several)'."""
        if self.backend == "slurm":
            return f"Slurm array jobs ({self.cluster}), submitit folder {self.slurm_folder}/"
        if self.gpus:
            return f"GPUs {','.join(self.gpus)}: one run per GPU, torchrun over several for runs that ask for more"
        return f"{self.jobs} CPU process{'es' * (self.jobs != 1)} at once, one thread each"


@dataclass(frozen=True)
class StudyRecipe(RunTarget):
    """A finetuning recipe of the study, whose runs child processes run in the study folder.

    The launcher handles each spec with its run directory made absolute (``output_dir`` is no
    part of a run's id); the child runs it with the recipe's ``output_dir``, relative to the
    study folder like the model paths, so that its spec.yaml and result.json read as the recipe
    wrote them, as when ``python -m scaling_repro run`` rebuilds the spec from the recipe.
    """

    output_dir: str = RUNS_DIR

    def function(self) -> Callable[[RunSpec], Any]:
        """Return the callable that runs one launched spec with the recipe's ``output_dir``."""
        return functools.partial(_run_with_output_dir, self.output_dir, super().function())


def _run_with_output_dir(output_dir: str, run: Callable[[RunSpec], Any], spec: RunSpec) -> Any:
    """Return ``run(spec)`` with ``spec.output_dir`` set to ``output_dir``."""
    return run(spec.model_copy(update={"output_dir": output_dir}))


def _in_study(spec: RunSpec, out_dir: Path) -> RunSpec:
    """Return ``spec`` with its ``output_dir`` joined to the study folder (the same run id)."""
    return spec.model_copy(update={"output_dir": str(out_dir / spec.output_dir)})


@dataclass(frozen=True)
class _TargetOf:
    """Each spec's RunTarget (its recipe file), by run directory."""

    targets: dict[Path, RunTarget]

    def __call__(self, spec: RunSpec) -> RunTarget:
        return self.targets[spec.run_dir]


class _GpuLease:
    """One-GPU runs share the machine; a multi-GPU run waits for them and holds every GPU.
    A waiting multi-GPU run lets no new one-GPU run start, so it is never starved."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._single = 0
        self._wide = False
        self._wide_waiting = 0

    @contextlib.contextmanager
    def single(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._wide and not self._wide_waiting)
            self._single += 1
        try:
            yield
        finally:
            with self._cond:
                self._single -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def wide(self) -> Iterator[None]:
        with self._cond:
            self._wide_waiting += 1
            self._cond.wait_for(lambda: not self._wide and not self._single)
            self._wide_waiting -= 1
            self._wide = True
        try:
            yield
        finally:
            with self._cond:
                self._wide = False
                self._cond.notify_all()


@dataclass
class GpuRunner:
    """The worker of one GPU: a one-GPU run as a subprocess on it, a multi-GPU run as a torchrun
    job over the first ``launch.gpus_per_node`` GPUs (holding them all, see :class:`_GpuLease`)."""

    target_of: Callable[[RunSpec], RunTarget]
    gpu: str
    gpus: tuple[str, ...]
    lease: _GpuLease
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, spec: RunSpec, claim: Claim) -> None:
        from scaling_repro.launch.torchrun import torchrun_command

        target = self.target_of(spec)
        if spec.launch.gpus_per_node <= 1:
            with self.lease.single():
                env = {**self.env, "CUDA_VISIBLE_DEVICES": self.gpu}
                SubprocessRunner(functools.partial(python_command, target), env, cwd=self.cwd)(spec, claim)
            return
        with self.lease.wide():
            env = {**self.env, "CUDA_VISIBLE_DEVICES": ",".join(self.gpus[: spec.launch.gpus_per_node])}
            SubprocessRunner(functools.partial(torchrun_command, target), env, cwd=self.cwd)(spec, claim)


def check_gpus(specs: Sequence[RunSpec], gpus: Sequence[str]) -> None:
    """Raise UserError when a run asks for more GPUs than ``gpus`` lists."""
    wide = max(specs, key=lambda s: s.launch.gpus_per_node, default=None)
    if wide is not None and wide.launch.gpus_per_node > len(gpus):
        raise UserError(
            f"run {wide.name}/{wide.run_id} asks for launch.gpus_per_node={wide.launch.gpus_per_node} but --gpus "
            f"lists {len(gpus)} ({','.join(gpus)}); list more GPUs or use --backend slurm"
        )


def gpu_runners(target_of: Callable[[RunSpec], RunTarget], gpus: Sequence[str], cwd: Path) -> list[GpuRunner]:
    """Return one :class:`GpuRunner` per GPU, sharing one lease."""
    lease = _GpuLease()
    return [GpuRunner(target_of, gpu, tuple(gpus), lease, cwd, {"OMP_NUM_THREADS": "4"}) for gpu in gpus]


def study_targets(specs: list[tuple[RunSpec, Path]], out_dir: Path) -> tuple[list[RunSpec], _TargetOf]:
    """Return the runs with their run directories in the study folder, most expensive first (so
    the last runs to finish are short), and each one's recipe target."""
    from scaling_repro.launch.order import estimate_cost

    ordered = sorted(specs, key=lambda item: -estimate_cost(item[0]))
    run_list = [_in_study(spec, out_dir) for spec, _ in ordered]
    targets = {
        run.run_dir: StudyRecipe((out_dir / recipe).resolve(), output_dir=spec.output_dir)
        for run, (spec, recipe) in zip(run_list, ordered)
    }
    return run_list, _TargetOf(targets)


def finetune_runs(
    specs: list[tuple[RunSpec, Path]],
    out_dir: Path,
    jobs: int,
    progress: bool = True,
    plan: StudyPlan | None = None,
    execution: Execution | None = None,
) -> StageResult:
    """Run every finetuning run that is not done as ``execution`` says (default: ``jobs``
    one-thread CPU child processes) in ``out_dir``, after writing the plan's inline recipes
    there; return the StageResult, or raise UserError when any failed."""
    from scaling_repro.launch.execute import SweepOptions

    started = time.perf_counter()
    execution = execution or Execution(jobs=jobs)
    if plan is not None:
        write_inline_recipes(plan, out_dir)
    run_list, target_of = study_targets(specs, out_dir)
    options = SweepOptions(retry_failed_before=time.time())  # a rerun retries earlier failures
    if execution.backend == "slurm":
        outcomes = _run_slurm(run_list, target_of, options, out_dir, execution)
    else:
        outcomes = _run_local(run_list, target_of, options, out_dir, execution, progress)
    return _stage_result(outcomes, execution, time.perf_counter() - started)


def _run_local(run_list, target_of, options, out_dir: Path, execution: Execution, progress: bool):
    from scaling_repro.launch.local import cpu_runners, run_specs

    if execution.gpus:
        check_gpus(run_list, execution.gpus)
        runners: Sequence[Any] = gpu_runners(target_of, execution.gpus, out_dir)
        owner = f"reproduce gpus {','.join(execution.gpus)}"
    else:
        runners, owner = cpu_runners(target_of, execution.jobs, specs=run_list, cwd=out_dir), "reproduce"
    return run_specs(run_list, runners, options, owner=owner, progress=progress)


def _run_slurm(run_list, target_of, options, out_dir: Path, execution: Execution):
    """Submit one array job per recipe and launch section from the study folder (where the tasks
    start, so the recipes' relative paths hold) and wait for them."""
    from scaling_repro.launch import slurm

    by_target: dict[RunTarget, list[RunSpec]] = {}
    for spec in run_list:
        by_target.setdefault(target_of(spec), []).append(spec)
    jobs, submitted = [], []
    with contextlib.chdir(out_dir):
        for target, group in by_target.items():
            arrays = slurm.plan_arrays(group, execution.array_parallelism)
            jobs += slurm.submit(arrays, target, options, out_dir / execution.slurm_folder, execution.cluster)
            submitted += [spec for array in arrays for spec in array.specs]
    return slurm.wait(jobs, submitted)


def _stage_result(outcomes, execution: Execution, seconds: float) -> StageResult:
    from scaling_repro.launch.execute import format_summary

    counts = {
        kind: sum(o.kind == kind for o in outcomes)
        for kind in ("ok", "skipped", "failed", "skipped_failed", "busy", "unreadable", "interrupted")
    }
    failed = counts["failed"] + counts["skipped_failed"]
    if failed:
        raise UserError(
            f"{failed} finetuning run(s) failed; the study stops before fitting (rerun to retry after "
            f"fixing the cause, or delete their result.json).\n" + format_summary(outcomes, "finetune")
        )
    if counts["busy"]:
        raise UserError(f"{counts['busy']} finetuning run(s) are being run by another process; rerun when it is done")
    if counts["interrupted"]:
        raise UserError(f"{counts['interrupted']} finetuning run(s) were interrupted; rerun to continue them")
    if counts["unreadable"]:
        raise UserError(
            f"{counts['unreadable']} finetuning result(s) cannot be read by this user; the study stops before "
            "fitting without them (ask their owner to make them group-readable: docs/cluster.md, 'Shared folders').\n"
            + format_summary(outcomes, "finetune")
        )
    where = f"{execution.jobs} at once" if execution.backend == "local" and not execution.gpus else execution.describe()
    summary = f"{counts['ok']} runs trained, {counts['skipped']} already done ({where})"
    return StageResult("finetune", seconds, summary, counts["ok"] > 0)
