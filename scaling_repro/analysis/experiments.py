"""Which runs form which scaling experiment: grouping RunRecords into figure axes.

The paper pivots every experiment on the finetuning data size Df and varies one other factor:

================  ===================  ===============================================
factor            varies               the other factors are fixed by grouping on
================  ===================  ===============================================
``model_size``    ``model_params``     ``pet_params``; each model at its largest
                                       ``pretrain_tokens`` among the runs (its final
                                       checkpoint, so that models pretrained for
                                       different token counts still form one ladder)
``pretrain_data`` ``pretrain_tokens``  ``model_params``, ``pet_params``
``pet_size``      ``pet_params``       ``model_params``, ``pretrain_tokens``
================  ===================  ===============================================

Detection (:func:`find_experiment`): take the successful, finetuned runs of one task and method
(un-finetuned "Baseline" runs, ``train.max_steps=0``, are set apart), group them on the fixed
factors, and keep the group with the most distinct values of the varied factor (then the most
Df values, then the most runs). Recipe names play no part, so one run set can serve several
figures (the 1B runs at the final checkpoint and default PET size are points of all three
experiments), and runs of several recipes at the same setting are pooled as seeds of one point.

Held-out marks (``RunRecord.held_out``, set by a recipe's ``sweep.holdout``) are experiment
specific: a pretraining-data recipe holds out its largest checkpoint, which is the 1B point of
the model-size experiment. So a run's mark counts in an experiment only when its recipe varies
that experiment's factor or varies no factor at all; marks of recipes that vary another factor
are ignored. Without any counted mark, ``holdout="auto"`` holds out the largest x and largest Df
(the paper's Table 1b rule) when enough points remain to fit, else the largest Df, else none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any

import numpy as np

from scaling_repro.config.recipe import METHODS, PET_METHODS
from scaling_repro.errors import UserError
from scaling_repro.fit.points import FitPoints, parse_holdout, points_from_records
from scaling_repro.results import RunRecord

FACTOR_FIELDS = {"model_size": "model_params", "pretrain_data": "pretrain_tokens", "pet_size": "pet_params"}
FACTOR_NAMES = {
    "model_size": "LLM model size",
    "pretrain_data": "pretraining data size",
    "pet_size": "PET parameter size",
}
METHOD_NAMES = {"full": "FMT", "prompt": "Prompt", "lora": "LoRA"}
PAIRS = tuple(combinations(METHODS, 2))  # method pairs compared: FMT vs Prompt, FMT vs LoRA, Prompt vs LoRA


class Missing(UserError):
    """The results lack the runs a figure, table or fit needs; the message says which."""


def pair_name(pair: tuple[str, str]) -> str:
    """Return 'FMT vs Prompt' for ('full', 'prompt')."""
    return f"{METHOD_NAMES[pair[0]]} vs {METHOD_NAMES[pair[1]]}"


def is_baseline(record: RunRecord) -> bool:
    """True for an un-finetuned "Baseline" run (``train.max_steps=0``, or no steps taken)."""
    max_steps = (record.spec.get("train") or {}).get("max_steps") if isinstance(record.spec, dict) else None
    return max_steps == 0 if max_steps is not None else record.steps == 0


def finetuned_runs(records: Iterable[RunRecord], task: str, method: str) -> list[RunRecord]:
    """Return the successful finetuned runs of ``task`` and ``method`` that have a test loss and Df."""
    return [
        r
        for r in records
        if r.ok
        and r.task == task
        and r.method == method
        and not is_baseline(r)
        and r.test_loss is not None
        and r.finetune_examples
    ]


def df_of(record: RunRecord) -> int:
    """Return the run's finetuning data size Df; every run of an experiment has one (:func:`finetuned_runs`)."""
    assert record.finetune_examples is not None, f"run {record.run_id} has no finetune_examples"
    return record.finetune_examples


def baseline_runs(records: Iterable[RunRecord], task: str) -> list[RunRecord]:
    """Return the successful un-finetuned (Baseline) runs of ``task``, any method."""
    return [r for r in records if r.ok and r.task == task and is_baseline(r)]


def _sort_key(value: Any) -> tuple[bool, float]:
    return (value is None, float(value) if value is not None else 0.0)


def describe_values(values: Iterable[Any]) -> str:
    """Return sorted distinct values as a short list, e.g. '[1e+09, 2e+09]' or '[none]'."""
    distinct = sorted(set(values), key=_sort_key)
    return "[" + ", ".join("none" if v is None else f"{v:.4g}" for v in distinct) + "]"


@dataclass(frozen=True)
class Experiment:
    """The runs of one scaling experiment (task x method x factor) and its fixed settings."""

    task: str
    method: str
    factor: str
    records: tuple[RunRecord, ...]  # held-out marks already filtered (see module docstring)
    fixed: dict[str, Any] = field(default_factory=dict)  # the other factors' values

    @property
    def field(self) -> str:
        """The RunRecord field the experiment varies, e.g. 'model_params'."""
        return FACTOR_FIELDS[self.factor]

    @property
    def x_values(self) -> list[float]:
        """Sorted distinct values of the varied factor."""
        return sorted({float(getattr(r, self.field)) for r in self.records})

    @property
    def df_values(self) -> list[float]:
        """Sorted distinct finetuning data sizes."""
        return sorted({float(df_of(r)) for r in self.records})

    def holdout_rule(self, holdout: str = "auto") -> str:
        """Return the holdout rule to use: ``holdout`` itself, or what "auto" resolves to."""
        if holdout != "auto":
            parse_holdout(holdout)
            return holdout
        if any(r.held_out for r in self.records):
            return "marked"
        x = np.array([float(getattr(r, self.field)) for r in self.records])
        df = np.array([float(df_of(r)) for r in self.records])
        for rule in ("largest", "largest-df"):
            held = np.isin(df, df.max()) | (np.isin(x, x.max()) if rule == "largest" else False)
            if (
                len(np.unique(x[~held])) >= 2
                and len(np.unique(df[~held])) >= 2
                and len(set(zip(x[~held], df[~held]))) >= 5
            ):
                return rule
        return "none"

    def points(self, holdout: str = "auto") -> FitPoints:
        """Return the experiment's FitPoints (mean loss per (x, Df) over its runs)."""
        rule = self.holdout_rule(holdout)
        points = points_from_records(self.records, self.factor, self.task, self.method, rule)
        return replace(points, labels={**points.labels, "holdout": rule})

    def runs_at(self, x: float) -> list[RunRecord]:
        """Return the runs at factor value ``x``."""
        return [r for r in self.records if float(getattr(r, self.field)) == x]


def _factors_varied(runs: Sequence[RunRecord]) -> set[str]:
    return {f for f, name in FACTOR_FIELDS.items() if len({getattr(r, name) for r in runs}) > 1}


def _counted_marks(group: Sequence[RunRecord], all_runs: Sequence[RunRecord], factor: str) -> list[RunRecord]:
    """Return ``group`` with held-out marks cleared on runs whose recipe varies another factor only."""
    by_name: dict[str, list[RunRecord]] = defaultdict(list)
    for r in all_runs:
        by_name[r.name].append(r)
    varied = {name: _factors_varied(runs) for name, runs in by_name.items()}
    out = []
    for r in group:
        ignore = r.held_out and varied[r.name] and factor not in varied[r.name]
        out.append(r.model_copy(update={"held_out": False}) if ignore else r)
    return out


def _groups(runs: Sequence[RunRecord], factor: str) -> dict[tuple, list[RunRecord]]:
    """Return the runs grouped on the factors that ``factor``'s experiment holds fixed."""
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    if factor == "model_size":
        final: dict[Any, int] = {}
        for r in runs:
            if r.pretrain_tokens is not None:
                final[r.model_params] = max(final.get(r.model_params, r.pretrain_tokens), r.pretrain_tokens)
        for r in runs:
            if r.pretrain_tokens == final.get(r.model_params):
                groups[(("pet_params", r.pet_params), ("pretrain_tokens", "final"))].append(r)
        return groups
    others = [name for f, name in FACTOR_FIELDS.items() if f != factor]
    for r in runs:
        groups[tuple((name, getattr(r, name)) for name in others)].append(r)
    return groups


def find_experiment(
    records: Iterable[RunRecord],
    task: str,
    method: str,
    factor: str,
    names: Sequence[str] | None = None,
    min_values: int = 2,
) -> Experiment:
    """Return the ``factor`` experiment of ``task`` and ``method`` (see module docstring).

    ``names`` restricts the runs to these recipe names. ``min_values=1`` also accepts a single
    factor value (finetuning-data scaling of one model, Fig. 1). Raises :class:`Missing` naming
    the runs that would be needed when the results hold no such experiment.
    """
    if factor not in FACTOR_FIELDS:
        raise UserError(f"factor: got {factor!r}; allowed: {', '.join(map(repr, FACTOR_FIELDS))}")
    field_name = FACTOR_FIELDS[factor]
    where = f"{task} / {METHOD_NAMES.get(method, method)}"
    if factor == "pet_size" and method not in PET_METHODS:
        raise Missing(f"{where}: PET size does not apply to {METHOD_NAMES.get(method, method)}")
    runs = finetuned_runs(records, task, method)
    if names:
        runs = [r for r in runs if r.name in names]
    if not runs:
        detail = f" of recipe(s) {list(names)}" if names else ""
        raise Missing(f"{where}: no successful finetuned runs{detail} with a test loss")
    candidates = []
    for key, group in _groups(runs, factor).items():
        xs = {getattr(r, field_name) for r in group} - {None}
        if len(xs) >= min_values:
            dfs = {r.finetune_examples for r in group}
            candidates.append(
                ((len(xs), len(dfs), len(group)), key, [r for r in group if getattr(r, field_name) is not None])
            )
    if not candidates:
        present = describe_values(getattr(r, field_name) for r in runs)
        raise Missing(
            f"{where}: no {FACTOR_NAMES[factor]} experiment; it needs finetuned runs at >= {min_values} "
            f"{field_name} value(s) with the other factors fixed, but the runs have {field_name} {present}"
        )
    candidates.sort(key=lambda c: (c[0], repr(c[1])), reverse=True)
    _, key, group = candidates[0]
    return Experiment(
        task=task,
        method=method,
        factor=factor,
        records=tuple(_counted_marks(group, runs, factor)),
        fixed=dict(key),
    )


def experiment_names(pairs: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    """Return a checked factor -> recipe names mapping (for ``--experiment FACTOR=NAME``)."""
    out = {}
    for factor, names in (pairs or {}).items():
        if factor not in FACTOR_FIELDS:
            raise UserError(f"--experiment: unknown factor {factor!r}; allowed: {', '.join(FACTOR_FIELDS)}")
        out[factor] = list(names)
    return out
