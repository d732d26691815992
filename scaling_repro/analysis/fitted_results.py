"""A results directory as the figures and tables see it: experiments and fitted laws, computed once.

:class:`FittedResults` wraps the RunRecords of a results directory. It finds each task x method x factor
experiment (:mod:`scaling_repro.analysis.experiments`) and fits the paper's joint procedure on it
(:func:`scaling_repro.fit.joint.fit_joint`: beta and E shared over model size and pretraining
data, then every factor refit), caching both, so a report that draws fourteen figures and four
tables fits each law once. Lookups that the results cannot answer raise
:class:`~scaling_repro.analysis.experiments.Missing` with the runs that would be needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path

from scaling_repro.analysis.experiments import (
    FACTOR_FIELDS,
    METHOD_NAMES,
    Experiment,
    Missing,
    baseline_runs,
    experiment_names,
    find_experiment,
    is_baseline,
)
from scaling_repro.config.recipe import METHODS
from scaling_repro.errors import UserError
from scaling_repro.fit.joint import JOINT_FACTORS, fit_joint
from scaling_repro.fit.points import FitPoints, parse_holdout
from scaling_repro.fit.record import JointFit, LawFit
from scaling_repro.results import RunRecord, load_results

# The held-out rule of every fit unless one is asked for: the largest x and the largest Df (the
# paper's bold settings of Table 1b). One rule for the report, `table`, `figure` and `reproduce`.
DEFAULT_HOLDOUT = "largest"
# Metrics in order of preference when a figure shows "the" generation metric of a task.
METRIC_PREFERENCE = ("bleurt", "rougeL", "bleu", "chrf")


class FittedResults:
    """The runs of a results directory with cached experiments and fits (see module docstring)."""

    def __init__(
        self,
        records: Iterable[RunRecord],
        holdout: str = DEFAULT_HOLDOUT,
        experiments: Mapping[str, Sequence[str]] | None = None,
        source: str | None = None,
    ):
        if holdout != "auto":
            parse_holdout(holdout)  # a bad rule fails here, once, not in every figure
        self.records = [r for r in records if r.ok]
        self.holdout = holdout
        self.names = experiment_names(experiments)
        self.source = source
        self._experiments: dict[tuple[str, str, str], Experiment | Missing] = {}
        self._joints: dict[tuple[str, str, str], JointFit | Missing] = {}

    @classmethod
    def from_dir(cls, results_dir: str | Path, **kwargs) -> FittedResults:
        """Return the FittedResults of every successful ``result.json`` under ``results_dir``."""
        path = Path(results_dir)
        if not path.is_dir():
            raise UserError(
                f"--results: {path} is not a directory (expected a results directory with result.json files)"
            )
        records = load_results(path)
        if not records:
            raise UserError(f"--results: no successful runs (result.json with status ok) under {path}")
        return cls(records, source=str(path), **kwargs)

    @cached_property
    def tasks(self) -> list[str]:
        """Tasks with finetuned runs, sorted."""
        return sorted({r.task for r in self.records if not is_baseline(r)})

    def check_task(self, task: str | None) -> list[str]:
        """Return [task] after checking it has runs, or every task when ``task`` is None."""
        if task is None:
            return self.tasks
        known = sorted({r.task for r in self.records})
        if task not in known:
            raise UserError(f"--task: no runs of task {task!r} in the results; tasks present: {known}")
        return [task]

    def methods(self, task: str) -> list[str]:
        """Methods with finetuned runs of ``task``, in the paper's order (FMT, Prompt, LoRA)."""
        present = {r.method for r in self.records if r.task == task and not is_baseline(r)}
        return [m for m in METHODS if m in present]

    def experiment(self, task: str, method: str, factor: str) -> Experiment:
        """Return the cached ``factor`` experiment of ``task`` x ``method``; raise Missing if absent."""
        key = (task, method, factor)
        if key not in self._experiments:
            try:
                self._experiments[key] = find_experiment(self.records, task, method, factor, self.names.get(factor))
            except Missing as err:
                self._experiments[key] = err
        found = self._experiments[key]
        if isinstance(found, Missing):
            raise found
        return found

    def data_scaling(self, task: str, method: str) -> Experiment:
        """Return the model-size runs of ``task`` x ``method``, one model size sufficing (Fig. 1)."""
        try:
            return self.experiment(task, method, "model_size")
        except Missing:
            return find_experiment(self.records, task, method, "model_size", self.names.get("model_size"), min_values=1)

    def points(self, task: str, method: str, factor: str) -> FitPoints:
        """Return the FitPoints of an experiment under these results' holdout rule."""
        return self.experiment(task, method, factor).points(self.holdout)

    def factors(self, task: str, method: str) -> dict[str, FitPoints]:
        """Return factor -> FitPoints for every experiment the results hold for ``task`` x ``method``."""
        out = {}
        for factor in FACTOR_FIELDS:
            try:
                out[factor] = self.points(task, method, factor)
            except Missing:
                continue
        return out

    def joint(self, task: str, method: str, law: str = "multiplicative") -> JointFit:
        """Return the cached joint fit (the paper's procedure) of ``task`` x ``method``.

        beta and E are estimated over model size and pretraining data when either is present,
        else over the PET-size experiment (the only one left). Raises Missing without experiments.
        """
        key = (task, method, law)
        if key not in self._joints:
            self._joints[key] = self._fit_joint(task, method, law)
        found = self._joints[key]
        if isinstance(found, Missing):
            raise found
        return found

    def _fit_joint(self, task: str, method: str, law: str) -> JointFit | Missing:
        factors = self.factors(task, method)
        if not factors:
            reasons = []
            for factor in FACTOR_FIELDS:
                try:
                    self.experiment(task, method, factor)
                except Missing as err:
                    reasons.append(str(err))
            return Missing("no scaling experiment to fit: " + "; ".join(reasons))
        shared_over = [f for f in JOINT_FACTORS if f in factors] or list(factors)
        labels = {"task": task, "method": method}
        try:
            return fit_joint(factors, law, shared_over=shared_over, labels=labels)
        except UserError as err:
            return Missing(f"{task} / {METHOD_NAMES[method]}: the {law} joint fit failed: {err}")

    def fit(self, task: str, method: str, factor: str, law: str = "multiplicative") -> LawFit:
        """Return the LawFit of one factor from the joint procedure; raise Missing if absent."""
        self.experiment(task, method, factor)  # raises why the factor's runs are missing, if they are
        return self.joint(task, method, law).fits[factor]

    def baselines(self, task: str) -> list[RunRecord]:
        """Return the un-finetuned Baseline runs of ``task``."""
        return baseline_runs(self.records, task)

    def metrics(self, task: str) -> list[str]:
        """Return the generation metrics of ``task``'s finetuned runs, preferred first."""
        names = {m for r in self.records if r.task == task and not is_baseline(r) for m in r.metrics}
        return sorted(names, key=lambda m: (METRIC_PREFERENCE.index(m) if m in METRIC_PREFERENCE else 99, m))
