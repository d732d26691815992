"""Figure 5: critical finetuning data sizes between methods, vs model size and vs pretraining data.

The critical data size of "A vs B" at base-model condition X is the Df where the fitted joint laws
of methods A and B predict the same loss (:func:`scaling_repro.fit.critical.critical_data_size`,
solved numerically as the paper's fsolve). Below it the method with the smaller beta (PET) is
better, above it the more data-hungry one. The shaded band is the range of finetuning data sizes
that were actually run: outside it the curves extrapolate the laws and are drawn dashed, and only
up to :data:`EXTRAPOLATE_DECADES` decades beyond it (further crossings are noted, not drawn). Laws
with different E can tie twice (at small and at very large Df); every crossing is drawn, each
branch as its own curve.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from scaling_repro.analysis.experiments import METHOD_NAMES, PAIRS, Missing, pair_name
from scaling_repro.analysis.fitted_results import FittedResults
from scaling_repro.analysis.numbers import human
from scaling_repro.figures.series import X_AXIS
from scaling_repro.figures.style import PAIR_COLORS, PANEL_SIZE, STYLE, tick_short_log_axis
from scaling_repro.fit.critical import critical_data_size
from scaling_repro.fit.record import LawFit

CRITICAL_FACTORS = ("model_size", "pretrain_data")
DF_BOUNDS = (1.0, 1e15)
EXTRAPOLATE_DECADES = 2.0  # how far beyond the Df range of the runs a critical size is drawn


def crossings(fit1: LawFit, fit2: LawFit, x: float, log_grid: np.ndarray) -> list[float]:
    """Return every Df in the grid's span where the two laws tie at ``x`` (ascending).

    Sign changes of the loss gap on ``log_grid`` (natural log of Df) bracket the roots; each is
    solved by :func:`critical_data_size` inside its bracket. The paper's fsolve finds one root;
    laws with different E can tie twice (e.g. FMT ties Prompt at small and at huge Df).
    """
    grid = np.exp(log_grid)
    gap = fit1.predict(x, grid) - fit2.predict(x, grid)
    roots: list[float] = []
    for j in np.flatnonzero(np.sign(gap[:-1]) * np.sign(gap[1:]) <= 0):
        root = critical_data_size(fit1, fit2, x, bounds=(grid[j], grid[j + 1]), grid=2)
        if not np.isnan(root[0]) and (not roots or root[0] > roots[-1] * (1 + 1e-9)):
            roots.append(float(root[0]))
    return roots


def branches(xs: np.ndarray, roots: list[list[float]], max_jump: float = 1.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return the crossings as continuous curves: a root joins the nearest root of the previous x
    when within ``max_jump`` decades, else it starts a new curve."""
    curves: list[list[tuple[float, float]]] = []
    open_curves: dict[int, float] = {}  # curve index -> its last log10 Df, for curves reaching the previous x
    for x, here in zip(xs, roots):
        taken, reached = set(), {}
        for root in here:
            log_root = np.log10(root)
            near = [
                (abs(v - log_root), i)
                for i, v in open_curves.items()
                if i not in taken and abs(v - log_root) <= max_jump
            ]
            if near:
                index = min(near)[1]
                taken.add(index)
            else:
                index = len(curves)
                curves.append([])
            curves[index].append((x, root))
            reached[index] = log_root
        open_curves = reached
    return [(np.array([p[0] for p in c]), np.array([p[1] for p in c])) for c in curves]


def critical_curves(fitted: FittedResults, task: str, factor: str, notes: list[str], n: int = 24) -> dict:
    """Return {pair: [curves of (x, critical Df)]} for every method pair with both fits, and the Df range run.

    The x grid spans the x values of the two methods' experiments. Pairs whose laws do not cross
    in ``DF_BOUNDS`` anywhere on the grid are noted and left out.
    """
    curves, data_sizes, x_values = {}, [], set()
    log_lo, log_hi = np.log(DF_BOUNDS)
    log_grid = np.linspace(log_lo, log_hi, 300)
    methods = fitted.methods(task)
    for pair in PAIRS:
        if not set(pair) <= set(methods):
            continue  # a method without any runs: said once by figure_5
        try:
            fits = [fitted.fit(task, m, factor) for m in pair]
        except Missing as err:
            notes.append(f"{task}: {pair_name(pair)} vs {X_AXIS[factor]}: {err}")
            continue
        xs = [p.x for f in fits for p in f.points if p.x is not None]  # x-factor fits: every point has x
        data_sizes += [p.data_size for f in fits for p in f.points]
        x_values |= set(xs)
        grid = np.geomspace(min(xs), max(xs), n)
        found = [crossings(fits[0], fits[1], x, log_grid) for x in grid]
        if not any(found):
            notes.append(
                f"{task}: the {pair_name(pair)} laws do not cross for Df in [{DF_BOUNDS[0]:g}, {DF_BOUNDS[1]:g}] "
                f"at any {X_AXIS[factor]} in [{human(min(xs))}, {human(max(xs))}]"
            )
            continue
        curves[pair] = branches(grid, found)
    data_range = (min(data_sizes), max(data_sizes)) if data_sizes else None
    if data_range is not None:
        curves = _clip_curves(curves, data_range, task, factor, notes)
    return {"curves": curves, "data_range": data_range, "x_values": sorted(x_values)}


def _clip_curves(curves: dict, data_range: tuple[float, float], task: str, factor: str, notes: list[str]) -> dict:
    """Drop the parts of the curves more than EXTRAPOLATE_DECADES beyond ``data_range`` (noting
    pairs left with nothing to draw)."""
    lo, hi = data_range[0] / 10**EXTRAPOLATE_DECADES, data_range[1] * 10**EXTRAPOLATE_DECADES
    kept = {}
    for pair, branches_ in curves.items():
        clipped = [(g, np.where((d >= lo) & (d <= hi), d, np.nan)) for g, d in branches_]
        clipped = [(g, d) for g, d in clipped if np.isfinite(d).any()]
        if clipped:
            kept[pair] = clipped
        else:
            found = [d for _, d in branches_]
            notes.append(
                f"{task}: the {pair_name(pair)} laws cross only at Df in [{human(min(map(np.min, found)))}, "
                f"{human(max(map(np.max, found)))}] vs {X_AXIS[factor]}, over {EXTRAPOLATE_DECADES:g} decades "
                f"beyond the Df run ({human(data_range[0])}-{human(data_range[1])}): not drawn"
            )
    return kept


def figure_5(fitted: FittedResults, task: str, options) -> tuple[Figure, list[str]]:
    """Fig. 5: critical data sizes between method pairs vs model size and vs pretraining data."""
    notes: list[str] = []
    methods = fitted.methods(task)
    if len(methods) < 2:
        raise Missing(f"{task}: Fig. 5 compares methods, but the runs have only {[METHOD_NAMES[m] for m in methods]}")
    absent = [METHOD_NAMES[m] for m in PAIRS[0] + PAIRS[1][1:] if m not in methods]
    if absent:
        notes.append(f"{task}: no finetuned runs of {', '.join(absent)}, so its pairs are left out")
    panels = {factor: critical_curves(fitted, task, factor, notes) for factor in CRITICAL_FACTORS}
    panels = {f: p for f, p in panels.items() if p["curves"]}
    if not panels:
        raise Missing("; ".join(notes) or f"{task}: Fig. 5 needs fits of at least two methods")
    colors = dict(zip(PAIRS, PAIR_COLORS))
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(PANEL_SIZE[0] * len(panels) + 1.6, PANEL_SIZE[1] + 0.3), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (factor, panel) in zip(axes, panels.items()):
            lo, hi = panel["data_range"]
            ax.axhspan(lo, hi, color="0.88", zorder=0, label="finetuning data range of the runs")
            for pair, curves in panel["curves"].items():
                for i, (grid, dfc) in enumerate(curves):
                    measured = np.where((dfc >= lo) & (dfc <= hi), dfc, np.nan)
                    style = {"color": colors[pair], "marker": "o" if len(grid) == 1 else None, "ms": 3}
                    ax.plot(grid, dfc, lw=1.2, ls="--", alpha=0.7, **style)  # extrapolated: dashed, faded
                    ax.plot(grid, measured, lw=1.8, label=pair_name(pair) if i == 0 else None, **style)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(X_AXIS[factor])
            ax.set_ylabel("critical finetuning examples $D_f^c$")
            ax.set_title(f"vs {'model size' if factor == 'model_size' else 'pretraining data'}")
            tick_short_log_axis(ax.xaxis, panel["x_values"])
            tick_short_log_axis(ax.yaxis)
        handles, labels = [], []
        for ax in axes:
            for h, label in zip(*ax.get_legend_handles_labels()):
                if label not in labels:
                    handles.append(h)
                    labels.append(label)
        handles.append(Line2D([], [], color="0.35", ls="--", lw=1.2, alpha=0.7))
        labels.append(f"extrapolated (up to {EXTRAPOLATE_DECADES:g} decades\nbeyond the data range)")
        fig.legend(handles, labels, loc="outside right center", frameon=False)
        fig.suptitle(f"{task}: critical finetuning data size (A vs B: A and B equal)", fontsize=11)
    return fig, notes
