"""``reproduce``: a whole study from nothing to findings.md, resumable, stage by stage.

    data      build the tasks (a stand-in corpus first, if the plan has one); train the tokenizer
              of the models the study pretrains
    pretrain  the base-model ladder and the checkpoints of the pretraining-data axis (plans
              that pretrain)
    models    every hub model revision fetched (or its local directory or stand-in checked),
              real tokens per training example measured (plans with hub models)
    finetune  every finetuning run of the plan's recipes, on CPU processes, GPUs or Slurm
    fit       the joint laws, single-variable laws, bootstrap intervals and measured checks
    report    tables, figures, findings.md

Every stage skips finished work: an interrupted study continues where it stopped, and a
finished one is re-reported in seconds (the fit is cached by a fingerprint of the results).
Each stage prints one summary line with its wall time; the end prints the timings, the
targets (wall time, peak memory) and the findings table. The data, finetuning and report stages
leave their INFO lines (per run, per file written) off the terminal: their summary line and
progress bar say it; a log file (:func:`scaling_repro.logs.log_to_file`) still gets them.

Everything happens in the study's output directory without making it the working directory:
paths are joined to it, and the child processes that train run in it, where the plan's recipes
have their relative paths (``runs/``, ``pretrained/<model>``). One invocation at a time: the
folder is locked (:func:`study_lock`) while a study runs in it, and a second one stops at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from scaling_repro.config.study_plan import REPORT_DIR, RUNS_DIR, StudyPlan
from scaling_repro.errors import UserError
from scaling_repro.locks import LockHeld, exclusive_lock
from scaling_repro.logs import terminal_shows_warnings_only
from scaling_repro.reproduce.finetune import Execution, finetune_runs
from scaling_repro.reproduce.stages import (
    StageResult,
    load_finetune_specs,
    prepare_data,
    pretrain_models,
)

log = logging.getLogger(__name__)


@dataclass
class StudyOutcome:
    """What a reproduction did and found."""

    out_dir: Path
    stages: list[StageResult] = field(default_factory=list)
    peak_memory_bytes: int | None = None
    findings: list = field(default_factory=list)  # list[findings.Finding]
    report_files: list[Path] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(stage.seconds for stage in self.stages)


LOCK_FILE = ".reproduce.lock"
_LOCKED_HERE: set[Path] = set()  # study folders this process holds the lock of


class StudyBusy(UserError):
    """Another ``reproduce`` runs in the same output folder."""


def _holder_text(holder: str) -> str:
    try:
        data = json.loads(holder)
        return f"pid {data['pid']} on {data['host']} since {data['since']}"
    except (ValueError, TypeError, KeyError):
        return "holder unknown"


@contextlib.contextmanager
def study_lock(out_dir: str | Path) -> Iterator[None]:
    """Hold the study folder ``out_dir`` (which must exist) for this process while inside;
    raise :class:`StudyBusy` at once when another process holds it. Two studies in one folder
    would remove each other's temporary checkpoints and both train every run.

    An exclusive ``flock`` of ``out_dir/.reproduce.lock``, which names the holder (pid, host,
    start time); the kernel releases it when the process ends, however it ends, so a killed
    study leaves no stale lock. Re-entrant within a process. Where the filesystem has no locks
    (Lustre without ``-o flock``), a warning says the folder is not protected.
    """
    out_dir = Path(out_dir).resolve()
    if out_dir in _LOCKED_HERE:
        yield
        return
    since = datetime.now().astimezone().isoformat(sep=" ", timespec="seconds")
    holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since})
    with contextlib.ExitStack() as stack:
        try:
            locked = stack.enter_context(exclusive_lock(out_dir / LOCK_FILE, holder, blocking=False))
        except LockHeld as err:
            raise StudyBusy(
                f"another `reproduce` is running in {out_dir} ({_holder_text(err.holder)}); "
                "wait for it or use another --out"
            ) from None
        if not locked:
            log.warning("%s: the filesystem has no file locks: two studies started in it would collide", out_dir)
        _LOCKED_HERE.add(out_dir)
        try:
            yield
        finally:
            _LOCKED_HERE.discard(out_dir)


def plan_results(out_dir: Path, run_dirs: Collection[Path]):
    """Return the :class:`~scaling_repro.analysis.FittedResults` of the plan's runs (``run_dirs``) only,
    read from ``out_dir/runs``."""
    from scaling_repro.analysis import FittedResults
    from scaling_repro.analysis.reproduction import HOLDOUT
    from scaling_repro.results import load_results

    return FittedResults(load_results(out_dir / RUNS_DIR, run_dirs=run_dirs), holdout=HOLDOUT, source=RUNS_DIR)


def stale_results(out_dir: Path, run_dirs: Collection[Path]) -> int:
    """Return how many results under ``out_dir/runs`` belong to no run of the plan: runs of
    recipes that have changed since they ran, which the fits must not mix with the plan's."""
    from scaling_repro.results import iter_result_files

    runs = out_dir / RUNS_DIR
    planned = set(iter_result_files(runs, run_dirs))
    return sum(path not in planned for path in iter_result_files(runs))


def fit_stage(plan: StudyPlan, out_dir: Path, run_dirs: Collection[Path]):
    """Fit the results of the plan's runs (``run_dirs``), or reuse ``report/analysis.json``
    when they have not changed; return (analysis, the figures FittedResults or None when reused,
    StageResult). Other results under ``out_dir/runs`` are left out, with a warning."""
    from scaling_repro.analysis.reproduction import (
        analyse,
        load_analysis,
        results_fingerprint,
    )

    started = time.perf_counter()
    stale = stale_results(out_dir, run_dirs)
    left_out = ""
    if stale:
        log.warning(
            "%d result(s) under %s/ belong to no run of the plan (their recipes changed since they "
            "ran): left out of the fits; delete them or use a new --out to keep the directory clean",
            stale,
            RUNS_DIR,
        )
        left_out = f"; {stale} result{'s' * (stale != 1)} of runs not in the plan left out"
    fingerprint = results_fingerprint(out_dir / RUNS_DIR, plan.analysis, run_dirs)
    cached = load_analysis(out_dir / REPORT_DIR / "analysis.json")
    if cached is not None and cached.fingerprint == fingerprint:
        return (
            cached,
            None,
            StageResult(
                "fit", time.perf_counter() - started, f"results unchanged: reused report/analysis.json{left_out}", False
            ),
        )
    fitted = plan_results(out_dir, run_dirs)
    analysis = analyse(fitted, plan.analysis, fingerprint)
    n_fits = sum(len(m.multiplicative.fits) + len(m.additive.fits) + len(m.single) for m in analysis.methods.values())
    summary = (
        f"{len(fitted.records)} runs -> {n_fits} law fits ({len(analysis.methods)} methods), "
        f"{plan.analysis.bootstrap} bootstrap resamples{left_out}"
    )
    return analysis, fitted, StageResult("fit", time.perf_counter() - started, summary)


def report_stage(analysis, fitted, header: list[str], out_dir: Path, run_dirs: Collection[Path]):
    """Check the findings, write findings.md / summary.md / analysis.json into ``out_dir/report``
    and (when the fits are new or the figures missing) the figures and tables of the plan's runs
    (``run_dirs``); return (findings, files, StageResult)."""
    from scaling_repro.analysis.findings import VERDICTS, check_findings
    from scaling_repro.report.study_report import write_figures, write_report

    started = time.perf_counter()
    findings = check_findings(analysis)
    report_dir = out_dir / REPORT_DIR
    files = write_report(analysis, findings, report_dir, header)
    drawn = "figures unchanged"
    figures_dir = report_dir / "figures"
    missing = not (report_dir / "index.md").is_file() or not figures_dir.is_dir() or not any(figures_dir.iterdir())
    if fitted is not None or missing:
        figures = write_figures(fitted or plan_results(out_dir, run_dirs), out_dir / RUNS_DIR, report_dir)
        files += figures
        drawn = f"{sum(p.suffix == '.png' for p in figures)} figures"
    counts = {v: sum(f.verdict == v for f in findings) for v in VERDICTS}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items()) + f"; {drawn}; {REPORT_DIR}/findings.md"
    return findings, files, StageResult("report", time.perf_counter() - started, summary, fitted is not None)


def reproduce(
    plan: StudyPlan,
    out_dir: str | Path,
    jobs: int = 2,
    progress: bool = True,
    on_stage: Callable[[StageResult], None] | None = None,
    verbose: bool = False,
    execution: Execution | None = None,
) -> StudyOutcome:
    """Run (or continue) the study of ``plan`` in ``out_dir`` (created if needed) with ``jobs``
    processes (or where ``execution`` says); return what it did. ``on_stage`` is called with
    each finished stage (for printing); ``verbose`` shows every stage's INFO lines on the
    terminal. Raises :class:`StudyBusy` at once when another process runs a study in ``out_dir``."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with study_lock(out_dir):
        return _reproduce(plan, out_dir, execution or Execution(jobs=jobs), progress, on_stage, verbose)


def _reproduce(
    plan: StudyPlan,
    out_dir: Path,
    execution: Execution,
    progress: bool,
    on_stage: Callable[[StageResult], None] | None,
    verbose: bool,
) -> StudyOutcome:
    from scaling_repro.reproduce.base_models import prepare_hub_models
    from scaling_repro.reproduce.monitor import track_peak_memory

    result = StudyOutcome(out_dir)

    def done(stage: StageResult) -> None:
        result.stages.append(stage)
        if on_stage is not None:
            on_stage(stage)

    def details_off_terminal():
        return terminal_shows_warnings_only(enabled=not verbose)

    with track_peak_memory() as memory:
        specs = load_finetune_specs(plan)
        with details_off_terminal():
            done(prepare_data(plan, specs, out_dir))
        if plan.models:
            done(pretrain_models(plan, out_dir, execution.jobs, progress))
        if plan.hub_models:
            with details_off_terminal():
                done(prepare_hub_models(plan, specs, out_dir))
        with details_off_terminal():
            done(finetune_runs(specs, out_dir, execution.jobs, progress, plan=plan, execution=execution))
        run_dirs = [out_dir / spec.run_dir for spec, _ in specs]
        analysis, fitted, stage = fit_stage(plan, out_dir, run_dirs)  # its "fitting ..." lines show progress
        done(stage)
        plan_line = (
            f"Plan: {plan.name} ({len(specs)} finetuning runs, {len(plan.models) + len(plan.hub_models)} base models); "
            f"output: {out_dir}"
        )
        header = [plan_line, "", "Stages (this invocation):", ""]
        header += [f"- {s.name}: {s.seconds:.1f} s - {s.summary}" for s in result.stages]
        with details_off_terminal():
            findings, files, stage = report_stage(analysis, fitted, header, out_dir, run_dirs)
        done(stage)
    result.peak_memory_bytes = memory.peak_bytes
    result.findings, result.report_files = findings, files
    return result
