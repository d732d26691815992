"""Readability checks of a drawn figure: no two texts overlap, no text leaves the canvas.

Uses matplotlib's own renderer extents (``fig.canvas.draw()``, ``artist.get_window_extent``,
``Bbox.overlaps``) of every visible, non-empty text: tick labels of the ticks actually drawn,
axis labels, offset texts, titles, legend entries and titles, annotation boxes (their bbox
patch when they have one) and figure-level texts, within one Axes and across the Axes of a
figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from matplotlib.transforms import Bbox

SLACK = 1.0  # pixels each extent is shrunk by, so that texts that merely touch do not count


@dataclass
class PlacedText:
    """One drawn text: where it is (panel and role), what it says and its extent in pixels."""

    panel: str
    role: str
    text: str
    extent: Bbox

    def __str__(self) -> str:
        return f"{self.panel} {self.role} {self.text!r}"


def _drawn_ticks(axis: Axis) -> list:
    """Return the ticks (major, then minor) that a draw puts inside the axis's view interval."""
    scale = axis.get_transform()
    lo, hi = sorted(np.ravel(scale.transform(np.asarray(axis.get_view_interval(), float))))
    eps = 1e-9 * max(abs(hi - lo), 1e-300)
    drawn = []
    for minor in (False, True):
        locs = axis.get_minorticklocs() if minor else axis.get_majorticklocs()
        ticks = axis.get_minor_ticks(len(locs)) if minor else axis.get_major_ticks(len(locs))
        for tick, loc in zip(ticks, locs):
            t = float(np.ravel(scale.transform(np.asarray([loc], float)))[0])
            if lo - eps <= t <= hi + eps:
                drawn.append((tick, "minor" if minor else "major"))
    return drawn


def _legend_texts(legend: Legend | None) -> list[tuple[str, Text]]:
    if legend is None or not legend.get_visible():
        return []
    return [("legend title", legend.get_title())] + [("legend entry", t) for t in legend.get_texts()]


def placed_texts(fig: Figure) -> list[PlacedText]:
    """Draw ``fig`` and return every visible, non-empty text with its extent."""
    if fig.canvas is None or not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    found: list[tuple[str, str, Text]] = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        panel = f"panel {i + 1}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if not axis.get_visible():
                continue
            for tick, kind in _drawn_ticks(axis):
                for label in (tick.label1, tick.label2):
                    found.append((panel, f"{name} {kind} tick label", label))
            found.append((panel, f"{name} axis label", axis.label))
            found.append((panel, f"{name} offset text", axis.get_offset_text()))
        found += [(panel, "title", t) for t in (ax._left_title, ax.title, ax._right_title)]
        found += [(panel, "text", t) for t in ax.texts]
        found += [(panel, role, t) for role, t in _legend_texts(ax.get_legend())]
    found += [("figure", role, t) for legend in fig.legends for role, t in _legend_texts(legend)]
    found += [("figure", "text", t) for t in fig.texts]
    for role, attr in (("suptitle", "_suptitle"), ("supxlabel", "_supxlabel"), ("supylabel", "_supylabel")):
        text = getattr(fig, attr, None)
        if text is not None:
            found.append(("figure", role, text))
    placed, seen = [], set()
    for panel, role, text in found:
        if id(text) in seen:
            continue  # the suptitle is also one of fig.texts
        seen.add(id(text))
        if not text.get_visible() or not text.get_text().strip():
            continue
        patch = text.get_bbox_patch()
        extent = (patch if patch is not None else text).get_window_extent(renderer)
        placed.append(PlacedText(panel, role, text.get_text(), extent))
    return placed


def _shrunk(box: Bbox) -> Bbox:
    return Bbox.from_extents(box.x0 + SLACK, box.y0 + SLACK, box.x1 - SLACK, box.y1 - SLACK)


def text_problems(fig: Figure, name: str) -> list[str]:
    """Return a line per pair of overlapping texts and per text outside the canvas of ``fig``."""
    texts = placed_texts(fig)
    canvas = fig.bbox
    problems = []
    for t in texts:
        e = t.extent
        if e.x0 < canvas.x0 - SLACK or e.y0 < canvas.y0 - SLACK or e.x1 > canvas.x1 + SLACK or e.y1 > canvas.y1 + SLACK:
            problems.append(f"{name}: {t} lies outside the canvas ({e.bounds} vs {canvas.bounds})")
    for a, b in combinations(texts, 2):
        if _shrunk(a.extent).overlaps(_shrunk(b.extent)):
            problems.append(f"{name}: {a} overlaps {b}")
    return problems
