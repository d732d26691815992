"""From an experiment's runs to plotted series: one series per value of the varied factor.

Points are means over the runs (seeds) at each (x, Df) setting, of the test loss or of any
per-run value (a metric, a zero-shot or few-shot score); held-out flags come from the
experiment's FitPoints so that every figure of one experiment marks the same points.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np

from scaling_repro.analysis.experiments import (
    FACTOR_NAMES,
    METHOD_NAMES,
    Experiment,
    Missing,
    df_of,
)
from scaling_repro.analysis.numbers import human, sci
from scaling_repro.figures.style import Series, colors_for
from scaling_repro.fit.points import FitPoints
from scaling_repro.fit.record import LawFit
from scaling_repro.results import RunRecord

ALPHA_SUBSCRIPT = {"model_size": "m", "pretrain_data": "p", "pet_size": "t"}
X_AXIS = {"model_size": "model parameters", "pretrain_data": "pretraining tokens"}
DF_AXIS = "finetuning examples $D_f$"
LOSS_AXIS = "test loss (log PPL, nats/token)"

Point = tuple[float, float]  # (x, Df)


def legend_title(factor: str, method: str) -> str:
    """Return the legend title of the varied factor, e.g. 'model size' or 'LoRA rank'."""
    if factor == "pet_size":
        return {"prompt": "prompt length", "lora": "LoRA rank"}.get(method, "PET size")
    return {"model_size": "model size", "pretrain_data": "pretraining tokens"}[factor]


def value_label(factor: str, x: float) -> str:
    """Return the legend label of one factor value: '1B' (parameters or tokens) or '100' (PET)."""
    return f"{x:g}" if factor == "pet_size" else human(x)


def mean_by_point(experiment: Experiment, value: Callable[[RunRecord], float | None]) -> dict[Point, float]:
    """Return (x, Df) -> mean of ``value(run)`` over the runs where it is not None."""
    values: dict[Point, list[float]] = defaultdict(list)
    for r in experiment.records:
        v = value(r)
        if v is not None:
            values[(float(getattr(r, experiment.field)), float(df_of(r)))].append(float(v))
    return {k: float(np.mean(v)) for k, v in values.items()}


def metric_score(metric: str) -> Callable[[RunRecord], float | None]:
    """Return run -> its test ``metric`` over all test sets (None where it was not measured)."""
    return lambda r: (r.metrics.get(metric) or {}).get("all")


def held_by_point(points: FitPoints) -> dict[Point, bool]:
    """Return (x, Df) -> whether the point is held out."""
    assert points.x is not None  # an experiment's points: each experiment varies an x factor
    return {(float(x), float(d)): bool(h) for x, d, h in zip(points.x, points.data_size, points.held_out)}


def df_grid(data_sizes, n: int = 120) -> np.ndarray:
    """Return a log-spaced grid spanning the data sizes with a small margin, for fitted curves."""
    lo, hi = float(np.min(data_sizes)), float(np.max(data_sizes))
    return np.geomspace(lo / 1.15, hi * 1.15, n)


def experiment_series(
    experiment: Experiment,
    values: dict[Point, float],
    held: dict[Point, bool],
    fit: LawFit | None = None,
    connect: bool = False,
    baseline: Callable[[float], float | None] | None = None,
) -> list[Series]:
    """Return one Series per factor value: points from ``values``, curve from ``fit`` (if given)."""
    if not values:
        return []
    xs = sorted({x for x, _ in values})
    colors = colors_for(xs)
    grid = df_grid([d for _, d in values])
    out = []
    for x in xs:
        dfs = np.array(sorted(d for xx, d in values if xx == x))
        out.append(
            Series(
                label=value_label(experiment.factor, x),
                color=colors[x],
                x=dfs,
                y=np.array([values[(x, d)] for d in dfs]),
                held_out=np.array([held.get((x, d), False) for d in dfs]),
                curve=(grid, fit.predict(x, grid)) if fit is not None else None,
                connect=connect,
                baseline=baseline(x) if baseline else None,
            )
        )
    return out


def fit_box(fit: LawFit, factor: str) -> str:
    """Return the fitted parameters and Delta_e / Delta_h as a few lines of mathtext."""
    p = fit.params
    sub = ALPHA_SUBSCRIPT.get(factor, "")
    held = "-" if fit.mad_held_out is None else f"{fit.mad_held_out:.4f}"
    return (
        f"$A$={sci(p['A'])}, $\\alpha_{sub}$={p['alpha']:.3g}, $\\beta$={p['beta']:.3g}\n"
        f"$E$={p['E']:.3g}, $\\Delta_e/\\Delta_h$={fit.mad_fit:.4f}/{held}"
    )


def require_values(values: dict, what: str, experiment: Experiment) -> None:
    """Raise Missing naming the experiment when none of its runs has the value ``what``."""
    if not values:
        where = f"{experiment.task} / {METHOD_NAMES.get(experiment.method, experiment.method)}"
        raise Missing(f"{where}: the {FACTOR_NAMES[experiment.factor]} runs have no {what}")
