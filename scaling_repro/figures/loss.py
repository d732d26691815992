"""Figures 1-4: test loss against finetuning data, with the fitted scaling laws.

- Fig. 1: single-variable law ``L(Df) = A Df^-beta + E`` fitted per model size (one panel per method).
- Fig. 2: the multiplicative joint law of model size x finetuning data (one panel per method).
- Fig. 3: pretraining data x finetuning data (the model of the pretraining-data runs, e.g. 1B).
- Fig. 4: PET parameter size x finetuning data (Prompt and LoRA).

Curves of Figs. 2-4 are the joint procedure's fits (:meth:`FittedResults.fit`); every curve runs through
the points of its factor value, held-out points are triangles, and each panel's box gives the
fitted parameters with the mean absolute deviation on fitting / held-out points.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from scaling_repro.analysis.experiments import (
    FACTOR_NAMES,
    METHOD_NAMES,
    Missing,
)
from scaling_repro.analysis.fitted_results import FittedResults
from scaling_repro.analysis.numbers import human
from scaling_repro.config.recipe import PET_METHODS
from scaling_repro.errors import UserError
from scaling_repro.figures.series import (
    DF_AXIS,
    LOSS_AXIS,
    experiment_series,
    fit_box,
    held_by_point,
    legend_title,
    mean_by_point,
    value_label,
)
from scaling_repro.figures.style import Panel, Series, colors_for, draw_figure
from scaling_repro.fit import fit_law

JOINT_FIGURES = {2: "model_size", 3: "pretrain_data", 4: "pet_size"}


def methods_for(fitted: FittedResults, task: str, factor: str) -> list[str]:
    """Return the task's methods that can have a ``factor`` experiment (PET size: Prompt, LoRA)."""
    return [m for m in fitted.methods(task) if factor != "pet_size" or m in PET_METHODS]


def fixed_text(fitted: FittedResults, task: str, factor: str, methods: list[str]) -> str:
    """Return what the experiment holds fixed, for the title, e.g. 'model 1B' (Figs. 3, 4)."""
    for method in methods:
        try:
            exp = fitted.experiment(task, method, factor)
        except Missing:
            continue
        if "model_params" in exp.fixed:
            return f" (model size {human(exp.fixed['model_params'])})"
    return ""


def single_fit_series(fitted: FittedResults, task: str, method: str, notes: list[str]) -> list[Series]:
    """Return Fig. 1's series of one method: per model size, its points and single-variable fit."""
    exp = fitted.data_scaling(task, method)
    points = exp.points(fitted.holdout)
    assert points.x is not None  # a model-size experiment's points have x
    xs = sorted(set(points.x))
    colors = colors_for(xs)
    out = []
    for x in xs:
        rows = points.x == x
        df, loss, mask = points.data_size[rows], points.loss[rows], points.held_out[rows]
        # the paper's Fig. 1: the largest Df of each size (also of the held-out 16B); within one
        # size, x is fixed, so that is what the 'largest' rule means here
        if fitted.holdout == "largest" or (
            fitted.holdout == "auto" and len(df) >= 5 and ((~mask).sum() < 4 or not mask.any())
        ):
            mask = df == df.max()
        label, curve = value_label("model_size", x), None
        try:
            fit = fit_law(None, df, loss, "single", held_out=mask, df_unit="examples")
            grid = np.geomspace(df.min() / 1.15, df.max() * 1.15, 120)
            curve = (grid, fit.predict(None, grid))
            dh = "-" if fit.mad_held_out is None else f"{fit.mad_held_out:.4f}"
            label = f"{label}: $\\beta$={fit.params['beta']:.3g}, $\\Delta_h$={dh}"
        except UserError as err:
            notes.append(f"{task} / {METHOD_NAMES[method]} {human(x)}: no single-variable fit ({err})")
        out.append(Series(label, colors[x], df, loss, mask, curve, connect=curve is None))
    return out


def figure_1(fitted: FittedResults, task: str, options) -> tuple[Figure, list[str]]:
    """Fig. 1: single-variable finetuning-data fits per model size, one panel per method."""
    notes: list[str] = []
    panels = []
    for method in fitted.methods(task):
        try:
            series = single_fit_series(fitted, task, method, notes)
        except Missing as err:
            notes.append(str(err))
            continue
        panels.append(Panel(METHOD_NAMES[method], series, DF_AXIS, LOSS_AXIS))
    if not panels:
        raise Missing("; ".join(notes) or f"{task}: no finetuned runs")
    return draw_figure(panels, f"{task}: finetuning data scaling per model size", "model size"), notes


def joint_panels(fitted: FittedResults, task: str, factor: str, notes: list[str]) -> list[Panel]:
    """Return one panel per method: the factor experiment's points with the joint law's curves."""
    panels = []
    for method in methods_for(fitted, task, factor):
        try:
            exp = fitted.experiment(task, method, factor)
            points = exp.points(fitted.holdout)
        except (Missing, UserError) as err:
            notes.append(str(err))
            continue
        try:
            fit = fitted.fit(task, method, factor)
        except Missing as err:
            notes.append(f"{err} (points drawn without a fitted curve)")
            fit = None
        values = mean_by_point(exp, lambda r: r.test_loss)
        series = experiment_series(exp, values, held_by_point(points), fit=fit, connect=fit is None)
        box = fit_box(fit, factor) if fit is not None else None
        panels.append(
            Panel(METHOD_NAMES[method], series, DF_AXIS, LOSS_AXIS, box=box, legend_title=legend_title(factor, method))
        )
    return panels


def joint_figure(number: int):
    """Return the draw function of Fig. 2, 3 or 4."""
    factor = JOINT_FIGURES[number]

    def draw(fitted: FittedResults, task: str, options) -> tuple[Figure, list[str]]:
        notes: list[str] = []
        methods = methods_for(fitted, task, factor)
        panels = joint_panels(fitted, task, factor, notes)
        if not panels:
            raise Missing("; ".join(notes) or f"{task}: no runs of {', '.join(METHOD_NAMES[m] for m in PET_METHODS)}")
        title = f"{task}: {FACTOR_NAMES[factor]} x finetuning data{fixed_text(fitted, task, factor, methods)}"
        return draw_figure(panels, title), notes

    draw.__doc__ = f"Fig. {number}: {FACTOR_NAMES[factor]} x finetuning data, multiplicative joint fits."
    return draw
