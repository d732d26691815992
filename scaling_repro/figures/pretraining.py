"""Figure 10: scaling of the base models before finetuning, loss vs model size.

The paper fits ``L(N) = A N^-alpha + E`` to the pretraining validation PPL of its base models.
From RunRecords the same curve comes from the un-finetuned "Baseline" runs
(``train.max_steps=0``): the test loss of each base model, at its final (largest) pretraining
checkpoint, on the finetuning task's test set. One panel per task; the largest model is held out
when at least four sizes remain to fit (the paper's 16B).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from scaling_repro.analysis.experiments import Missing
from scaling_repro.analysis.fitted_results import FittedResults
from scaling_repro.analysis.numbers import sci
from scaling_repro.errors import UserError
from scaling_repro.figures.series import X_AXIS
from scaling_repro.figures.style import Panel, Series, colors_for, draw_figure
from scaling_repro.fit import LawFit, fit_law


def base_points(fitted: FittedResults, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (model parameters, mean Baseline test loss) at each model's final checkpoint."""
    runs = [
        (r.model_params, r.pretrain_tokens, r.test_loss)
        for r in fitted.baselines(task)
        if r.test_loss is not None and r.model_params
    ]
    final: dict[int, int] = {}
    for params, tokens, _ in runs:
        if tokens is not None:
            final[params] = max(final.get(params, tokens), tokens)
    losses: dict[int, list[float]] = defaultdict(list)
    for params, tokens, loss in runs:
        if tokens == final.get(params):
            losses[params].append(loss)
    sizes = sorted(losses)
    return np.array(sizes, float), np.array([np.mean(losses[s]) for s in sizes])


def base_fit(sizes: np.ndarray, loss: np.ndarray) -> LawFit:
    """Return the single-variable fit of loss vs model size (largest held out if >= 5 sizes)."""
    held = sizes == sizes.max() if len(sizes) >= 5 else np.zeros(len(sizes), bool)
    return fit_law(None, sizes, loss, "single", held_out=held, df_unit="parameters")


def figure_10(fitted: FittedResults, tasks: Sequence[str], options) -> tuple[Figure, list[str]]:
    """Fig. 10: base-model loss vs model size with the fitted single-variable law, per task."""
    notes: list[str] = []
    panels = []
    for task in tasks:
        sizes, loss = base_points(fitted, task)
        if len(sizes) < 2:
            notes.append(
                f"{task}: Fig. 10 needs un-finetuned Baseline runs (train.max_steps=0) with a test loss "
                f"of >= 2 model sizes; found {len(sizes)}"
            )
            continue
        color = colors_for([0])[0]
        held, curve, box = np.zeros(len(sizes), bool), None, None
        try:
            fit = base_fit(sizes, loss)
            held = np.array([p.held_out for p in fit.points])
            grid = np.geomspace(sizes.min() / 1.3, sizes.max() * 1.3, 120)
            curve = (grid, fit.predict(None, grid))
            p = fit.params
            dh = "-" if fit.mad_held_out is None else f"{fit.mad_held_out:.4f}"
            box = (
                f"$L = A N^{{-\\alpha}} + E$\n$A$={sci(p['A'])}, $\\alpha$={p['beta']:.3g}, $E$={p['E']:.3g}\n"
                f"$\\Delta_e/\\Delta_h$={fit.mad_fit:.4f}/{dh}"
            )
        except UserError as err:
            notes.append(f"{task}: no fit of the base-model losses ({err})")
        series = [Series("base model", color, sizes, loss, held, curve)]
        panels.append(Panel(task, series, X_AXIS["model_size"], "test loss without finetuning (nats)", box=box))
    if not panels:
        raise Missing("; ".join(notes))
    return draw_figure(panels, "Base models before finetuning: loss vs model size"), notes
