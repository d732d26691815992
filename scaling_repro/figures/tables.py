"""The paper's Tables 2, 4, 5, 6 and 7 computed from a results directory.

- Table 2 / 6: held-out mean absolute deviation (Delta_h) of the multiplicative and additive
  joint laws per factor and method (Table 2 is one task, En-De in the paper; Table 6 all tasks).
- Table 4: fitted parameters of the multiplicative law (joint procedure): A and alpha per factor,
  the shared E and beta.
- Table 5: the closed-form critical data size ``Df_c = H * X^gamma`` of each method pair
  (Eq. 3) from the fitted parameters, for model-size and pretraining-data scaling.
- Table 7: Pearson's r between test PPL (exp of the loss) and the generation metric over each
  experiment's points, with its p-value (scipy.stats.pearsonr); ``‡`` marks p < 0.01.

Each table is tidy data (CSV) and Markdown. With ``compare_paper`` the published value is shown
beside ours, in parentheses in Markdown and in a ``paper`` column in the CSV, wherever the task,
method and factor are the paper's (and, for Table 7, the metric is the paper's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import pearsonr

from scaling_repro.analysis import published
from scaling_repro.analysis.experiments import FACTOR_FIELDS, FACTOR_NAMES, METHOD_NAMES, PAIRS, Missing, pair_name
from scaling_repro.analysis.fitted_results import FittedResults
from scaling_repro.analysis.numbers import sci
from scaling_repro.config.recipe import METHODS
from scaling_repro.errors import UserError
from scaling_repro.figures.quality import choose_metric, metric_name
from scaling_repro.figures.series import mean_by_point, metric_score
from scaling_repro.figures.tabular import Table, markdown_table, tidy_frame, with_paper
from scaling_repro.fit.critical import critical_power_law

LAWS = ("multiplicative", "additive")
UNITS = (
    "X: model size in parameters, pretraining data in tokens, PET size in prompt tokens (Prompt) or "
    "LoRA rank (LoRA); Df: finetuning examples; loss: nats per target token (log PPL)."
)
PAPER_NOTE = " Values in parentheses: published in the paper."
# Table 4 rows: (name, factor, law parameter); E and beta are shared by the factors.
PARAM_ROWS = (
    ("A_m", "model_size", "A"),
    ("alpha_m", "model_size", "alpha"),
    ("A_p", "pretrain_data", "A"),
    ("alpha_p", "pretrain_data", "alpha"),
    ("A_t", "pet_size", "A"),
    ("alpha_t", "pet_size", "alpha"),
    ("E", None, "E"),
    ("beta", None, "beta"),
)


def _caption(text: str, compare_paper: bool) -> str:
    return text + " " + UNITS + (PAPER_NOTE if compare_paper else "")


def table_4(
    fitted: FittedResults, tasks: Sequence[str], compare_paper: bool = False, metric: str | None = None
) -> Table:
    """Table 4: the multiplicative joint law's parameters per task and method."""
    rows, sections, notes = [], [], []
    for task in tasks:
        joints = {}
        for method in fitted.methods(task):
            try:
                joints[method] = fitted.joint(task, method)
            except Missing as err:
                notes.append(str(err))
        if not joints:
            continue
        body = []
        for name, factor, param in PARAM_ROWS:
            cells, units = [], []
            for method, joint in joints.items():
                fit = joint.fits.get(factor) if factor else None
                value = joint.shared.get(param) if factor is None else (fit.params[param] if fit else None)
                if value is None:
                    cells.append("-")
                    continue
                paper = published.table4_value(task, method, factor or "model_size", param) if compare_paper else None
                cells.append(with_paper(sci(value), None if paper is None else sci(paper)))
                unit = fit.x_unit if fit else None
                units.append(f"{unit} ({METHOD_NAMES[method]})" if factor == "pet_size" else unit)
                rows.append(
                    {
                        "task": task,
                        "method": method,
                        "parameter": name,
                        "factor": factor or "shared",
                        "value": value,
                        "paper": paper,
                        "x_unit": unit,
                        "df_unit": "examples",
                        "shared_over": ",".join(joint.shared_over),
                    }
                )
            if any(c != "-" for c in cells):
                unit_text = ", ".join(dict.fromkeys(u for u in units if u)) or "-"
                body.append([name, unit_text] + cells)
        header = ["parameter", "unit of x"] + [METHOD_NAMES[m] for m in joints]
        sections.append((task, markdown_table(header, body)))
    caption = _caption(
        "Multiplicative law L = A * X^-alpha * Df^-beta + E, joint procedure (beta and E shared "
        "over model size and pretraining data).",
        compare_paper,
    )
    return Table(4, "fitted scaling-law parameters", tidy_frame(rows), sections, caption, notes)


def _reason(fitted: FittedResults, task: str, method: str, factor: str, law: str, err: Missing) -> str:
    """Return why a fit is missing: the experiment's absence (any law) or this law's failure."""
    try:
        fitted.experiment(task, method, factor)
    except Missing as missing:
        return str(missing)
    return f"{law} law: {err}"


def _mad_cells(
    fitted: FittedResults, task: str, factor: str, law: str, compare_paper: bool, rows: list, notes: list, rules: dict
) -> list[str]:
    cells, values = [], []
    for method in METHODS:
        paper = published.MAD_HELD_OUT[law].get((task, factor, method)) if compare_paper else None
        try:
            fit = fitted.fit(task, method, factor, law)
        except Missing as err:
            if method in fitted.methods(task) and not (factor == "pet_size" and method == "full"):
                notes.append(_reason(fitted, task, method, factor, law, err))
            cells.append("-")
            continue
        value = fit.mad_held_out
        rule = fit.labels.get("holdout", fitted.holdout)
        rules[rule] = None
        cells.append(with_paper("-" if value is None else f"{value:.4f}", None if paper is None else f"{paper:.2g}"))
        if value is not None:
            values.append(value)
        rows.append(
            {
                "task": task,
                "factor": factor,
                "law": law,
                "method": method,
                "mad_held_out": value,
                "mad_fit": fit.mad_fit,
                "n_held_out": fit.n_held_out,
                "holdout": rule,
                "paper": paper,
            }
        )
    avg = float(np.mean(values)) if values else None
    paper_avg = published.MAD_HELD_OUT_AVG[law].get((task, factor)) if compare_paper else None
    cells.append(with_paper("-" if avg is None else f"{avg:.4f}", None if paper_avg is None else f"{paper_avg:.2g}"))
    if avg is not None:
        rows.append(
            {
                "task": task,
                "factor": factor,
                "law": law,
                "method": "avg",
                "mad_held_out": avg,
                "mad_fit": None,
                "n_held_out": None,
                "holdout": ",".join(rules),
                "paper": paper_avg,
            }
        )
    return cells


def table_mad(number: int) -> Callable[..., Table]:
    """Return the builder of Table 2 (one task) or Table 6 (all tasks): held-out MAD per law."""

    def build(
        fitted: FittedResults, tasks: Sequence[str], compare_paper: bool = False, metric: str | None = None
    ) -> Table:
        rows: list[dict] = []
        body: list[list[str]] = []
        notes: list[str] = []
        for task in tasks:
            for factor in FACTOR_FIELDS:
                rules: dict[str, None] = {}
                cells = [
                    c for law in LAWS for c in _mad_cells(fitted, task, factor, law, compare_paper, rows, notes, rules)
                ]
                if any(c.split(" ")[0] != "-" for c in cells):
                    body.append([task, FACTOR_NAMES[factor], ", ".join(rules)] + cells)
        names = [METHOD_NAMES[m] for m in METHODS] + ["Avg"]
        header = ["task", "scaling factor", "held out"] + [f"mult. {n}" for n in names] + [f"add. {n}" for n in names]
        caption = _caption(
            "Held-out mean absolute deviation Delta_h (lower is better) of the multiplicative "
            "and additive joint laws, each fitted with the joint procedure. 'held out': the rule that "
            "chose the held-out points of the row ('largest': the largest x and the largest Df, the "
            "paper's; 'marked': the runs' recipe marks).",
            compare_paper,
        )
        return Table(
            number,
            "held-out fitting errors, multiplicative vs additive",
            tidy_frame(rows),
            [("", markdown_table(header, body))] if body else [],
            caption,
            notes,
        )

    return build


def table_5(
    fitted: FittedResults, tasks: Sequence[str], compare_paper: bool = False, metric: str | None = None
) -> Table:
    """Table 5: H and gamma of Df_c = H * X^gamma (Eq. 3) for every method pair."""
    rows, body, notes = [], [], []
    for task in tasks:
        if len(fitted.methods(task)) < 2:
            notes.append(
                f"{task}: Table 5 compares methods, but the runs have only "
                f"{[METHOD_NAMES[m] for m in fitted.methods(task)]}"
            )
        for factor in ("model_size", "pretrain_data"):
            h_cells, g_cells = [], []
            for pair in PAIRS:
                paper = published.CRITICAL_POWER_LAW[factor].get(task, {}).get(pair) if compare_paper else None
                try:
                    h, gamma = critical_power_law(*(fitted.fit(task, m, factor) for m in pair))
                except (Missing, UserError) as err:
                    if all(m in fitted.methods(task) for m in pair):
                        notes.append(f"{task} {pair_name(pair)} ({FACTOR_NAMES[factor]}): {err}")
                    h_cells.append("-")
                    g_cells.append("-")
                    continue
                h_cells.append(with_paper(sci(h), None if paper is None else sci(paper[0])))
                g_cells.append(with_paper(f"{gamma:.3g}", None if paper is None else f"{paper[1]:.2g}"))
                rows.append(
                    {
                        "task": task,
                        "factor": factor,
                        "pair": pair_name(pair),
                        "H": h,
                        "gamma": gamma,
                        "paper_H": paper and paper[0],
                        "paper_gamma": paper and paper[1],
                        "x_unit": "parameters" if factor == "model_size" else "tokens",
                        "df_unit": "examples",
                    }
                )
            if any(c != "-" for c in h_cells):
                body += [[task, FACTOR_NAMES[factor], "H"] + h_cells, [task, FACTOR_NAMES[factor], "gamma"] + g_cells]
    header = ["task", "scaling factor", "coefficient"] + [pair_name(p) for p in PAIRS]
    caption = _caption(
        "Critical finetuning data size of 'A vs B' where the gap between the methods is the "
        "constant E_A - E_B: Df_c = H * X^gamma, H = (A_A/A_B)^(1/(beta_A-beta_B)), "
        "gamma = (alpha_B-alpha_A)/(beta_A-beta_B), from the fitted multiplicative laws.",
        compare_paper,
    )
    return Table(
        5,
        "critical-point coefficients H and gamma",
        tidy_frame(rows),
        [("", markdown_table(header, body))] if body else [],
        caption,
        notes,
    )


def table_7(
    fitted: FittedResults, tasks: Sequence[str], compare_paper: bool = False, metric: str | None = None
) -> Table:
    """Table 7: Pearson r between test PPL and the generation metric over each experiment's points."""
    rows, sections, notes = [], [], []
    for task in tasks:
        try:
            name = choose_metric(set(fitted.metrics(task)), metric, "test metric", task)
        except Missing as err:
            notes.append(str(err))
            continue
        body = []
        for factor in FACTOR_FIELDS:
            cells = []
            for method in METHODS:
                paper = published.PEARSON_R.get((task, factor, method))
                if not compare_paper or published.PEARSON_METRIC.get(task) != name:
                    paper = None
                try:
                    exp = fitted.experiment(task, method, factor)
                except Missing as err:
                    if method in fitted.methods(task) and not (factor == "pet_size" and method == "full"):
                        notes.append(str(err))
                    cells.append("-")
                    continue
                ppl = mean_by_point(exp, lambda r: None if r.test_loss is None else np.exp(r.test_loss))
                score = mean_by_point(exp, metric_score(name))
                keys = [k for k in ppl if k in score]
                if len(keys) < 3 or np.ptp([score[k] for k in keys]) == 0:
                    notes.append(
                        f"{task} / {METHOD_NAMES[method]} ({FACTOR_NAMES[factor]}): {len(keys)} point(s) "
                        f"with {name}; Pearson's r needs >= 3 with varying scores"
                    )
                    cells.append("-")
                    continue
                r, p = pearsonr([ppl[k] for k in keys], [score[k] for k in keys])
                cells.append(
                    with_paper(f"{r:.3f}" + ("‡" if p < 0.01 else ""), None if paper is None else f"{paper:.3f}")
                )
                rows.append(
                    {
                        "task": task,
                        "factor": factor,
                        "method": method,
                        "metric": name,
                        "r": float(r),
                        "p": float(p),
                        "n_points": len(keys),
                        "paper": paper,
                    }
                )
            if any(c != "-" for c in cells):
                body.append([FACTOR_NAMES[factor]] + cells)
        if body:
            header = ["scaling factor"] + [METHOD_NAMES[m] for m in METHODS]
            sections.append((f"{task} (PPL vs {metric_name(name)})", markdown_table(header, body)))
    caption = (
        "Pearson correlation between test PPL (exp of the mean test loss per setting) and the generation "
        "metric over the points of each experiment (held-out points included); ‡: p < 0.01. Lower PPL and "
        "higher scores are better, so r is negative when they agree." + (PAPER_NOTE if compare_paper else "")
    )
    return Table(
        7, "Pearson correlation between PPL and generation quality", tidy_frame(rows), sections, caption, notes
    )


TABLES: dict[int, Callable[..., Table]] = {2: table_mad(2), 4: table_4, 5: table_5, 6: table_mad(6), 7: table_7}


def make_table(
    fitted: FittedResults,
    number: int,
    task: str | None = None,
    compare_paper: bool = False,
    metric: str | None = None,
) -> Table:
    """Return table ``number`` (2, 4, 5, 6 or 7) for ``task`` (default: all tasks; Table 2: En-De or the first)."""
    if number not in TABLES:
        raise UserError(f"table: got {number!r}; the paper's tables computed from results are {sorted(TABLES)}")
    tasks = fitted.check_task(task)
    if number == 2 and task is None and tasks:
        tasks = ["wmt14_en_de"] if "wmt14_en_de" in tasks else tasks[:1]
    return TABLES[number](fitted, tasks, compare_paper, metric)
