"""The study's fits: the paper's procedure applied to the finetuning results of a reproduction.

Experiments and their joint fits come from :class:`scaling_repro.analysis.FittedResults`, the same
object that draws the report's figures and tables, so every number in the report is one fit.
Experiments are found by their factors, not recipe names, so one run serves every experiment
it belongs to (the paper's 1B runs are points of all three), and runs with another seed are
pooled as the runs of one point (their mean is fitted, the paper's noise reduction). Held out:
the largest x and the largest Df of each experiment (the paper's bold settings of Table 1b).

Per method this adds what findings need: bootstrap replicates of the multiplicative joint fit
(the whole procedure resampled, by default each point's seeds and the fitting points:
:func:`scaling_repro.fit.joint.bootstrap_joint`), the
single-variable law per model size (Fig. 1) and the measured checks
(:mod:`scaling_repro.analysis.checks`). Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from scaling_repro.analysis.checks import StudyChecks, run_checks
from scaling_repro.analysis.experiments import METHOD_NAMES
from scaling_repro.analysis.fitted_results import DEFAULT_HOLDOUT, FittedResults
from scaling_repro.config.study_plan import AnalysisSettings
from scaling_repro.errors import UserError
from scaling_repro.fileio import atomic_write_text
from scaling_repro.fit import LawFit
from scaling_repro.fit.joint import bootstrap_joint
from scaling_repro.fit.points import points_from_records
from scaling_repro.fit.record import JointFit
from scaling_repro.results import iter_result_files

log = logging.getLogger(__name__)

HOLDOUT = DEFAULT_HOLDOUT  # largest x or largest Df: the paper's held-out (bold) settings, as every command
SINGLE_MIN_POINTS = 3  # L(Df) = A Df^-beta + E has 3 parameters
# Bootstrap seed per method, written out rather than numbered off METHODS: the intervals of every
# analysis depend on them, so adding or reordering a method must not move them.
METHOD_SEEDS = {"full": 0, "prompt": 1, "lora": 2}


class MethodFits(BaseModel):
    """Every fit of one finetuning method."""

    model_config = ConfigDict(extra="forbid")

    method: str
    multiplicative: JointFit
    additive: JointFit
    single: dict[str, LawFit]  # model name -> L(Df) = A Df^-beta + E, on the model-size points


class StudyAnalysis(BaseModel):
    """The fits and checks of a reproduction; ``fingerprint`` identifies the results used."""

    model_config = ConfigDict(extra="forbid")

    fingerprint: str
    settings: AnalysisSettings
    methods: dict[str, MethodFits]
    checks: StudyChecks

    def save(self, path: str | Path) -> Path:
        """Write this analysis as JSON atomically; return the path."""
        atomic_write_text(path, self.model_dump_json(indent=1) + "\n")
        return Path(path)


def results_fingerprint(
    runs_dir: str | Path, settings: AnalysisSettings, run_dirs: Collection[str | Path] | None = None
) -> str:
    """Return a hash of every result file's path, size and mtime (with ``run_dirs``, of these
    runs only), and of the settings: equal fingerprints mean the analysis would see the same
    results."""
    digest = hashlib.sha256(settings.model_dump_json().encode())
    for path in iter_result_files(runs_dir, run_dirs):
        stat = path.stat()
        digest.update(f"{path.relative_to(runs_dir)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def fit_method(fitted: FittedResults, task: str, method: str, settings: AnalysisSettings) -> MethodFits:
    """Return the multiplicative (with bootstrap) and additive joint fits of ``fitted`` and the
    per-model single-variable fits of one method."""
    from scaling_repro.analysis.experiments import Missing

    try:
        multiplicative = fitted.joint(task, method, "multiplicative")
        additive = fitted.joint(task, method, "additive")
    except Missing as err:
        raise UserError(f"{METHOD_NAMES[method]}: nothing to fit: {err}") from None
    if settings.bootstrap:
        # one seed per method: the methods' replicates are independent draws, so pairing them by
        # index (analysis.paired) samples the difference of two independent estimates
        multiplicative = bootstrap_joint(
            multiplicative,
            fitted.factors(task, method),
            settings.bootstrap,
            settings.resample,
            settings.level,
            seed=METHOD_SEEDS[method],
        )
    single = {}
    size_runs = list(fitted.experiment(task, method, "model_size").records)
    for model in sorted(
        {r.model for r in size_runs}, key=lambda m: min(r.model_params or 0 for r in size_runs if r.model == m)
    ):
        points = points_from_records(
            [r for r in size_runs if r.model == model], "finetune_data", method=method, holdout="largest-df"
        )
        if (~points.held_out).sum() < SINGLE_MIN_POINTS:
            log.warning(
                "%s %s: %d fitting data sizes; the single-variable law (3 parameters) needs %d, skipped",
                METHOD_NAMES[method],
                model,
                (~points.held_out).sum(),
                SINGLE_MIN_POINTS,
            )
            continue
        single[model] = points.fit("single", labels={"model": model})
    return MethodFits(method=method, multiplicative=multiplicative, additive=additive, single=single)


def analyse(fitted: FittedResults, settings: AnalysisSettings, fingerprint: str = "") -> StudyAnalysis:
    """Return the fits of every method of the study's task and the checks (noise,
    monotonicity, largest model best, best method, critical data sizes, zero-shot)."""
    from scaling_repro.analysis.experiments import Missing, is_baseline

    tasks = fitted.tasks
    if len(tasks) != 1:
        if not tasks:
            raise UserError(
                "no finetuning run finished, so there is nothing to fit: the plan's `finetune:` "
                "list needs at least the model-size recipe (baseline runs alone are not analysed)"
            )
        raise UserError(f"a reproduction analyses one task; the results hold {tasks}")
    task = tasks[0]
    methods, size_records = {}, {}
    for method in fitted.methods(task):
        try:
            size_records[method] = list(fitted.experiment(task, method, "model_size").records)
        except Missing as err:
            raise UserError(f"{METHOD_NAMES[method]}: no model-size experiment: {err}") from None
        log.debug("fitting %s", METHOD_NAMES[method])
        methods[method] = fit_method(fitted, task, method, settings)
    finetuned = [r for r in fitted.records if not is_baseline(r)]  # un-finetuned runs are no seeds of Df points
    checks = run_checks(finetuned, size_records, {m: f.multiplicative for m, f in methods.items()}, settings)
    return StudyAnalysis(fingerprint=fingerprint, settings=settings, methods=methods, checks=checks)


def load_analysis(path: str | Path) -> StudyAnalysis | None:
    """Return the analysis saved in ``path``, or None when it is missing or unreadable."""
    try:
        return StudyAnalysis.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
