"""Fit inputs from results: RunRecords (or any table) -> :class:`FitPoints` for one law fit.

One point per (x, Df) setting: the loss is the mean test loss over its runs (the paper averages
3 runs, each on a different finetuning subset), and the per-run losses are kept for the
bootstrap. The factor decides what x is:

==================  ======================  =======================================
factor              x (RunRecord field)     unit
==================  ======================  =======================================
``model_size``      ``model_params``        parameters
``pretrain_data``   ``pretrain_tokens``     tokens
``pet_size``        ``pet_params``          prompt tokens (Prompt) / LoRA rank (LoRA)
``finetune_data``   none (single law)       -
==================  ======================  =======================================

Df is ``finetune_examples`` (examples) and the loss ``test_loss`` (nats per target token).
Runs of one point must agree on every other factor (model size, pretraining tokens, PET size);
a point that mixes settings is an error naming them, not a silent average; select one
experiment with ``names=`` or ``where=``.

Held-out points (the paper's extrapolation set) are either marked on the runs
(``RunRecord.held_out``, from the recipe) or chosen by rule: the largest x and/or largest Df
values (Table 1b holds out the largest settings). See :func:`holdout_mask`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from scaling_repro.errors import UserError
from scaling_repro.results import RunRecord

if TYPE_CHECKING:
    from scaling_repro.fit.optimize import Residual
    from scaling_repro.fit.record import LawFit

FACTORS: dict[str, str | None] = {
    "model_size": "model_params",
    "pretrain_data": "pretrain_tokens",
    "pet_size": "pet_params",
    "finetune_data": None,
}
FACTOR_FIELDS = ("model_params", "pretrain_tokens", "pet_params")
X_UNITS = {"model_size": "parameters", "pretrain_data": "tokens"}
PET_UNITS = {"prompt": "prompt tokens", "lora": "LoRA rank"}
HOLDOUT_HELP = (
    "'marked' (runs marked held_out by their recipe), 'none', or a rule 'largest-x', 'largest-df', "
    "'largest' (largest x or largest Df), optionally ':K' for the K largest values (e.g. 'largest-df:2'); "
    "combine with '+', e.g. 'marked+largest-x'"
)


@dataclass(frozen=True)
class FitPoints:
    """The inputs of one law fit: one entry per (x, Df) point, averaged over its runs."""

    x: np.ndarray | None
    data_size: np.ndarray
    loss: np.ndarray
    held_out: np.ndarray
    runs: tuple[tuple[float, ...], ...]
    x_unit: str | None = None
    df_unit: str = "examples"
    labels: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.loss)

    def fit(
        self, law: str = "multiplicative", residual: Residual = "linear", huber_delta: float = 1e-3, **kwargs: Any
    ) -> LawFit:
        """Return ``fit_law`` on these points (held-out points excluded from fitting, evaluated)."""
        from scaling_repro.fit.fitting import fit_law

        return fit_law(
            self.x,
            self.data_size,
            self.loss,
            law,
            residual,
            huber_delta,
            held_out=self.held_out,
            runs=self.runs,
            x_unit=self.x_unit,
            df_unit=self.df_unit,
            labels={**self.labels, **kwargs.pop("labels", {})},
            **kwargs,
        )


def parse_holdout(rule: str) -> list[tuple[str, int]]:
    """Return the parts of a holdout rule as (kind, count) pairs; raise a UserError if malformed."""
    parts = []
    for part in str(rule).split("+"):
        kind, _, count = part.strip().partition(":")
        if kind not in ("marked", "none", "largest-x", "largest-df", "largest"):
            raise UserError(f"holdout: got {rule!r}; allowed: {HOLDOUT_HELP}")
        try:
            k = int(count) if count else 1
        except ValueError:
            k = 0
        if k < 1 or (count and kind in ("marked", "none")):
            raise UserError(f"holdout: bad count in {part!r}; allowed: {HOLDOUT_HELP}")
        parts.append((kind, k))
    return parts


def holdout_mask(x: np.ndarray | None, data_size: np.ndarray, marked: np.ndarray, rule: str = "marked") -> np.ndarray:
    """Return which points are held out under ``rule`` (see HOLDOUT_HELP); ``marked`` is the runs' flag."""
    held = np.zeros(len(data_size), bool)
    for kind, count in parse_holdout(rule):
        if kind == "marked":
            held |= np.asarray(marked, bool)
        if kind in ("largest-x", "largest") and x is not None:
            held |= np.isin(x, np.unique(x)[-count:])
        if kind in ("largest-df", "largest"):
            held |= np.isin(data_size, np.unique(data_size)[-count:])
        if kind == "largest-x" and x is None:
            raise UserError("holdout: 'largest-x' needs an x factor; this fit has only the data size")
    return held


def _matches(record: RunRecord, where: Mapping[str, Any]) -> bool:
    for key, wanted in where.items():
        if not hasattr(record, key):
            raise UserError(f"where: {key!r} is not a RunRecord field; e.g. model, pet_params, name, seed")
        values = wanted if isinstance(wanted, (list, tuple, set)) else [wanted]
        if getattr(record, key) not in values and str(getattr(record, key)) not in map(str, values):
            return False
    return True


def select_records(
    records: Iterable[RunRecord],
    task: str | None = None,
    method: str | None = None,
    names: Sequence[str] | None = None,
    where: Mapping[str, Any] | None = None,
    allow_empty: bool = False,
) -> list[RunRecord]:
    """Return the ok records of one task and method (inferred when unique), optionally filtered.

    Raises a UserError when nothing matches, unless ``allow_empty``.
    """
    chosen = [r for r in records if r.ok and (names is None or r.name in names) and _matches(r, where or {})]
    for attr, wanted in (("task", task), ("method", method)):
        present = sorted({getattr(r, attr) for r in chosen})
        if wanted is None and len(present) > 1:
            raise UserError(f"the results hold several {attr}s {present}; choose one with --{attr}")
        if wanted is not None:
            chosen = [r for r in chosen if getattr(r, attr) == wanted]
    if not chosen and not allow_empty:
        raise UserError(
            f"no successful runs match task={task!r} method={method!r} names={names!r} where={dict(where or {})!r}"
        )
    return chosen


def points_from_records(
    records: Iterable[RunRecord],
    factor: str,
    task: str | None = None,
    method: str | None = None,
    holdout: str = "marked",
    names: Sequence[str] | None = None,
    where: Mapping[str, Any] | None = None,
) -> FitPoints:
    """Return the FitPoints of ``factor`` for one (task, method) from ``records``.

    ``task`` / ``method`` may be omitted when the records hold only one. ``names`` (recipe
    names) and ``where`` (RunRecord field -> value or list of values) select an experiment.
    """
    if factor not in FACTORS:
        raise UserError(f"factor: got {factor!r}; allowed: {', '.join(map(repr, FACTORS))}")
    chosen = select_records(records, task, method, names, where)
    x_field = FACTORS[factor]
    by_point: dict[tuple[float | None, int], list[RunRecord]] = defaultdict(list)
    losses: dict[tuple[float | None, int], list[float]] = defaultdict(list)
    seen: set[str] = set()
    for record in chosen:
        if record.run_id in seen:
            continue
        seen.add(record.run_id)
        loss = _required(record, "test_loss", factor)
        examples = _required(record, "finetune_examples", factor)
        x = float(_required(record, x_field, factor)) if x_field else None
        key = (x, int(examples))
        by_point[key].append(record)
        losses[key].append(float(loss))
    keys = sorted(by_point, key=lambda k: (k[0] or 0.0, k[1]))
    for key in keys:
        _check_same_setting(by_point[key], x_field, key)
    runs = [losses[k] for k in keys]
    marked = [any(r.held_out for r in by_point[k]) for k in keys]
    first = chosen[0]
    x_unit = PET_UNITS.get(first.method, "PET size") if factor == "pet_size" else X_UNITS.get(factor)
    labels = {"task": first.task, "method": first.method, "factor": factor}
    return _averaged_points(keys, runs, marked, holdout, bool(x_field), x_unit, "examples", labels)


def _required(record: RunRecord, needed: str, factor: str) -> Any:
    """Return the record's ``needed`` field; raise a UserError naming the run when it is None."""
    value = getattr(record, needed)
    if value is None:
        raise UserError(
            f"run {record.run_id} ({record.name}, method {record.method}) has no {needed}, "
            f"which the {factor!r} factor needs; exclude it with --where or --name"
        )
    return value


def _averaged_points(keys, runs, marked, holdout: str, has_x: bool, x_unit, df_unit, labels) -> FitPoints:
    """Return FitPoints of (x, Df) ``keys``, each the mean of its ``runs`` losses."""
    x = np.array([k[0] for k in keys], float) if has_x else None
    data_size = np.array([k[1] for k in keys], float)
    runs = tuple(tuple(r) for r in runs)
    return FitPoints(
        x=x,
        data_size=data_size,
        loss=np.array([np.mean(r) for r in runs]),
        held_out=holdout_mask(x, data_size, np.array(marked, bool), holdout),
        runs=runs,
        x_unit=x_unit,
        df_unit=df_unit,
        labels=labels,
    )


def _check_same_setting(records: list[RunRecord], x_field: str | None, key) -> None:
    for other in FACTOR_FIELDS:
        if other == x_field:
            continue
        values = sorted({getattr(r, other) for r in records}, key=lambda v: (v is None, v or 0))
        if len(values) > 1:
            raise UserError(
                f"point x={key[0]}, Df={key[1]} mixes runs with different {other} {values} "
                f"(runs {[r.run_id for r in records][:6]}); select one experiment with --name or --where {other}=..."
            )


def points_from_table(
    frame,
    x_column: str | None,
    df_column: str,
    loss_column: str,
    held_out_column: str | None = None,
    holdout: str = "marked",
    x_unit: str | None = None,
    df_unit: str = "examples",
) -> FitPoints:
    """Return FitPoints from a pandas DataFrame (e.g. a CSV of published numbers).

    Rows with the same (x, Df) are runs of one point and are averaged. ``held_out_column`` (0/1
    or true/false) marks held-out rows for ``holdout='marked'``.
    """
    import pandas as pd

    columns = [c for c in (x_column, df_column, loss_column, held_out_column) if c]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"table has no column(s) {missing}; its columns: {list(frame.columns)}")
    if frame.empty:
        raise UserError("table has no rows")
    numeric = {}
    for column in filter(None, (x_column, df_column, loss_column)):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
        if len(bad):
            row = int(bad[0])
            raise UserError(
                f"column {column!r}, row {row + 1}: {frame[column].iloc[row]!r} is not a finite number > 0 "
                f"({len(bad)} bad row(s))"
            )
        numeric[column] = values
    marked_rows = np.zeros(len(frame), bool)
    if held_out_column:
        text = frame[held_out_column].astype(str).str.strip().str.lower()
        unknown = sorted(set(text) - {"1", "0", "true", "false", "yes", "no", ""})
        if unknown:
            raise UserError(
                f"column {held_out_column!r}: values {unknown[:5]} are not booleans (use 0/1 or true/false)"
            )
        marked_rows = text.isin({"1", "true", "yes"}).to_numpy()
    groups: dict[tuple[float | None, float], list[int]] = defaultdict(list)
    for i in range(len(frame)):
        x = float(numeric[x_column][i]) if x_column else None
        groups[(x, float(numeric[df_column][i]))].append(i)
    keys = sorted(groups, key=lambda k: (k[0] or 0.0, k[1]))
    runs = [[float(numeric[loss_column][i]) for i in groups[k]] for k in keys]
    marked = [bool(marked_rows[groups[k]].any()) for k in keys]
    return _averaged_points(keys, runs, marked, holdout, bool(x_column), x_unit, df_unit, {})
