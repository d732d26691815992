"""Drawing primitives shared by every figure: panels of series, legends, colours, saving.

matplotlib's object API only (``matplotlib.figure.Figure``, no pyplot, no display): PNGs are
rendered by Agg whatever backend the caller's session uses (which is left alone), so figures
render the same on a headless cluster node, in a notebook and on a laptop. A figure is a row of
:class:`Panel` objects, each a set of :class:`Series` (one per value of the varied factor):
points (filled circles for fitting points, triangles for held-out points, as the paper),
an optional fitted curve, an optional dashed Baseline level.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from scaling_repro.analysis.numbers import human

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

STYLE: dict[RcKeyType, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.4,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # embeds TrueType, so text stays editable in a paper's PDF
}
PANEL_SIZE = (3.4, 2.7)  # inches per panel
MARKERS = {"fit": "o", "held": "^"}
BOX_ROOM = 0.11  # fraction of the data's y range added per line of a panel's parameter box
PAIR_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")


def colors_for(values: Sequence[Any]) -> dict[Any, Any]:
    """Return a colour per value on the viridis scale (small values dark, large light)."""
    cmap = matplotlib.colormaps["viridis"]
    n = len(values)
    positions = np.linspace(0.0, 0.85, n) if n > 1 else [0.35]
    return {v: cmap(p) for v, p in zip(values, positions)}


@dataclass
class Series:
    """One line of a panel: the points of one factor value, with their fit or Baseline."""

    label: str
    color: Any
    x: np.ndarray
    y: np.ndarray
    held_out: np.ndarray | None = None
    curve: tuple[np.ndarray, np.ndarray] | None = None  # fitted (x, y) drawn as a solid line
    connect: bool = False  # join the points with a thin line when there is no fit
    baseline: float | None = None  # level of the un-finetuned model, a dashed line


@dataclass
class Panel:
    """One axes: a title, its series, axis labels and scales, and an optional parameter box."""

    title: str
    series: list[Series]
    xlabel: str
    ylabel: str
    box: str | None = None  # fitted parameters, drawn inside the axes
    box_loc: str = "upper right"
    legend_title: str | None = None  # defaults to the figure's
    xlog: bool = True
    ylog: bool = False
    extra: list[tuple[np.ndarray, np.ndarray, dict]] = field(default_factory=list)  # (x, y, plot kwargs)


def _draw_series(ax, s: Series) -> None:
    held = np.zeros(len(s.x), bool) if s.held_out is None else np.asarray(s.held_out, bool)
    if s.curve is not None:
        ax.plot(*s.curve, color=s.color, lw=1.3, zorder=2)
    elif s.connect and len(s.x) > 1:
        order = np.argsort(s.x)
        ax.plot(np.asarray(s.x)[order], np.asarray(s.y)[order], color=s.color, lw=0.9, alpha=0.8, zorder=2)
    x, y = np.asarray(s.x), np.asarray(s.y)
    ax.scatter(x[~held], y[~held], color=s.color, marker=MARKERS["fit"], s=16, zorder=3, edgecolors="none")
    if held.any():
        ax.scatter(
            x[held], y[held], color=s.color, marker=MARKERS["held"], s=26, zorder=3, edgecolors="black", linewidths=0.5
        )
    if s.baseline is not None:
        ax.axhline(s.baseline, color=s.color, ls="--", lw=1.0, alpha=0.9, zorder=1)


_BOX_ANCHORS = {
    "upper right": (0.97, 0.97, "right", "top"),
    "lower right": (0.97, 0.03, "right", "bottom"),
    "upper left": (0.03, 0.97, "left", "top"),
    "lower left": (0.03, 0.03, "left", "bottom"),
}


def tick_short_log_axis(axis, values: Sequence[float] = ()) -> None:
    """Tick a log axis (``ax.xaxis`` or ``ax.yaxis``) that spans less than two decades readably.

    matplotlib labels the minor ticks of such an axis, and the labels ("2x10^4 3x10^4 ...")
    run into each other. With several positive ``values`` (the data's own x values) the axis is
    ticked at them (thinned to about six, :func:`_spread`); otherwise at 1-2-5 steps, or at
    five rounded values across the view when fewer than three steps fall in it. Call it after the
    limits are final; wider axes are left alone.
    """
    lo, hi = sorted(axis.get_view_interval())
    xs = sorted({float(v) for v in values if v > 0})
    if len(xs) > 1 and xs[-1] / xs[0] < 100:
        ticks = _spread(xs)
    elif lo > 0 and hi / lo < 100:
        decades = 10.0 ** np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
        rounded = {float(f"{v:.2g}") for v in np.geomspace(lo, hi, 7)[1:-1]}
        for candidates in ({d * m for d in decades for m in (1, 2, 5)}, rounded, set(np.geomspace(lo, hi, 4))):
            ticks = _spread(sorted(v for v in candidates if lo <= v <= hi))
            if len(ticks) >= 3:
                break
    else:
        return
    axis.set_ticks(ticks, [human(v) for v in ticks])
    axis.set_minor_formatter(NullFormatter())


def _spread(xs: list[float], parts: float = 6.0) -> list[float]:
    """Return ``xs`` (ascending) less the values closer than 1/``parts`` of their log span to the
    previous one kept, so that their labels keep apart; the last value is always kept."""
    if len(xs) < 2:
        return xs
    gap = np.log10(xs[-1] / xs[0]) / parts
    kept = [xs[0]]
    for v in xs[1:-1]:
        if np.log10(v / kept[-1]) >= gap:
            kept.append(v)
    if len(kept) > 1 and np.log10(xs[-1] / kept[-1]) < gap:
        kept.pop()
    return [*kept, xs[-1]]


def _tick_short_log_axis(ax, panel: Panel) -> None:
    """Tick a log x axis at the data's own values when they span less than two decades."""
    tick_short_log_axis(ax.xaxis, [v for s in panel.series for v in np.asarray(s.x)])


def draw_panel(ax, panel: Panel) -> None:
    """Draw ``panel`` on ``ax``."""
    for s in panel.series:
        _draw_series(ax, s)
    for x, y, kwargs in panel.extra:
        ax.plot(x, y, **kwargs)
    if panel.xlog:
        ax.set_xscale("log")
        _tick_short_log_axis(ax, panel)
    if panel.ylog:
        ax.set_yscale("log")
        tick_short_log_axis(ax.yaxis)
    ax.set_title(panel.title)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    if panel.box:
        # room for the box above (or below) the data, so that it never hides points
        lo, hi = ax.get_ylim()
        room = BOX_ROOM * (1 + panel.box.count("\n")) * (hi - lo)
        if not panel.ylog:
            ax.set_ylim(lo, hi + room) if panel.box_loc.startswith("upper") else ax.set_ylim(lo - room, hi)
        box_x, box_y, ha, va = _BOX_ANCHORS[panel.box_loc]
        ax.text(
            box_x,
            box_y,
            panel.box,
            transform=ax.transAxes,
            ha=ha,
            va=va,
            fontsize=7.5,
            zorder=5,
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "0.75", "alpha": 0.9},
        )


def _kind_handles(panels: Sequence[Panel]) -> list[Line2D]:
    """Legend entries for the marker kinds used: fitting point, held-out point, fit, Baseline."""
    series = [s for p in panels for s in p.series]
    handles = [Line2D([], [], color="0.35", marker=MARKERS["fit"], ls="none", ms=4.5, label="fitting point")]
    if any(s.held_out is not None and np.any(s.held_out) for s in series):
        handles.append(
            Line2D(
                [],
                [],
                color="0.35",
                marker=MARKERS["held"],
                ls="none",
                ms=5.5,
                mec="black",
                mew=0.5,
                label="held-out point",
            )
        )
    if any(s.curve is not None for s in series):
        handles.append(Line2D([], [], color="0.35", ls="-", label="fitted law"))
    if any(s.baseline is not None for s in series):
        handles.append(Line2D([], [], color="0.35", ls="--", label="Baseline (no finetuning)"))
    return handles


def _series_handles(series: Sequence[Series]) -> list[Line2D]:
    return [Line2D([], [], color=s.color, marker="o", ms=4, lw=1.3, label=s.label) for s in series]


def _legend_columns(series: Sequence[Series]) -> int:
    """Return how many legend columns fit under one panel for these labels."""
    longest = max((len(re.sub(r"[${}_]", "", re.sub(r"\\[a-zA-Z]+", "x", s.label))) for s in series), default=1)
    return max(1, min(4, len(series), 36 // (longest + 4)))


def draw_figure(
    panels: Sequence[Panel], title: str | None = None, legend_title: str | None = None, rows: int = 1
) -> Figure:
    """Return a figure of ``panels`` in ``rows`` rows (filled row by row) with legends.

    When every panel has the same series labels, one legend (series, then marker kinds) sits
    right of the panels; otherwise each panel gets its own legend in a row below it.
    """
    n = math.ceil(len(panels) / rows)
    shared = len({tuple(s.label for s in p.series) for p in panels}) == 1
    columns = [_legend_columns(p.series) for p in panels]
    legend_rows = 0 if shared else max(math.ceil(len(p.series) / c) for p, c in zip(panels, columns))
    legend_height = 0.0 if shared else 0.35 + 0.17 * legend_rows
    height = rows * (PANEL_SIZE[1] + legend_height) + 0.3
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(PANEL_SIZE[0] * n + 1.4, height), layout="constrained")
        if shared:
            axes = list(fig.subplots(rows, n, squeeze=False).flat)
        else:
            grid = fig.subplots(2 * rows, n, squeeze=False, height_ratios=[PANEL_SIZE[1], legend_height] * rows)
            axes = list(grid[0::2].flat)
            legend_axes = list(grid[1::2].flat)
        for ax in axes[len(panels) :] + ([] if shared else legend_axes[len(panels) :]):
            ax.set_visible(False)
        for ax, panel in zip(axes, panels):
            draw_panel(ax, panel)
        kinds = _kind_handles(panels)
        if shared:
            fig.legend(
                handles=_series_handles(panels[0].series) + kinds,
                loc="outside right center",
                title=legend_title or panels[0].legend_title,
                frameon=False,
            )
        else:
            for ax, panel, ncol in zip(legend_axes, panels, columns):
                ax.axis("off")
                ax.legend(
                    handles=_series_handles(panel.series),
                    title=panel.legend_title or legend_title,
                    loc="upper center",
                    ncol=ncol,
                    frameon=False,
                    columnspacing=0.8,
                    handlelength=1.4,
                    borderaxespad=0.0,
                )
            fig.legend(handles=kinds, loc="outside right center", frameon=False)
        if title:
            fig.suptitle(title, fontsize=11)
    return fig


def safe_name(text: str) -> str:
    """Return ``text`` as one file-name component: itself when it is only letters, digits, '_',
    '-' and inner dots; otherwise those characters (others as '_') plus a short hash of ``text``,
    so that names from results files never leave the output folder or collide."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._-")
    if slug == text:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug[:60]}-{digest}" if slug else digest


def save_figure(
    fig: Figure, out_dir: Path, stem: str, formats: Sequence[str] = ("png", "pdf"), dpi: int = 200
) -> list[Path]:
    """Write ``fig`` as ``out_dir/stem.<format>`` for each format; return the paths.
    ``stem`` is made a safe file name (:func:`safe_name`), so every file lands inside ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = safe_name(stem)
    paths = []
    with matplotlib.rc_context(STYLE):
        for fmt in formats:
            path = out_dir / f"{stem}.{fmt}"
            # abspath, not resolve: a symlink at the target is replaced below, never followed
            if os.path.dirname(os.path.abspath(path)) != os.path.abspath(out_dir):
                raise ValueError(f"figure file {path} would be written outside {out_dir}")
            tmp = out_dir / f".{stem}.tmp.{fmt}"
            fig.savefig(tmp, dpi=dpi, format=fmt)
            tmp.replace(path)  # atomic: a reader never sees half an image
            paths.append(path)
    return paths
