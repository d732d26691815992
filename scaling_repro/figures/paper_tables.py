"""Tables from the paper's published numbers alone (no results needed): Table 5 computed from
the published Table 4, beside the published Table 5."""

from __future__ import annotations

from collections.abc import Sequence

from scaling_repro.analysis import published
from scaling_repro.analysis.experiments import FACTOR_NAMES, PAIRS, pair_name
from scaling_repro.analysis.numbers import sci
from scaling_repro.figures.tables import UNITS
from scaling_repro.figures.tabular import Table, markdown_table, tidy_frame, with_paper
from scaling_repro.fit.critical import critical_power_law

NEAR_EQUAL_BETA = 0.01  # |beta1 - beta2| at or below this: Table 4's 2-digit betas cannot give H


def table_5_from_paper(tasks: Sequence[str] = published.TASKS) -> Table:
    """Table 5 computed from the published Table 4 (Eq. 3 on its rounded parameters), with the
    published Table 5 beside it; pairs whose betas differ by <= NEAR_EQUAL_BETA are flagged."""
    rows, body = [], []
    for task in tasks:
        for factor in ("model_size", "pretrain_data"):
            h_cells, g_cells = [], []
            for pair in PAIRS:
                laws = [published.table4(task, m)[factor] for m in pair]
                paper = published.CRITICAL_POWER_LAW[factor][task][pair]
                h, gamma = critical_power_law(*(("multiplicative", p) for p in laws))
                d_beta = laws[0]["beta"] - laws[1]["beta"]
                flag = abs(d_beta) <= NEAR_EQUAL_BETA + 1e-12
                mark = " †" if flag else ""
                h_cells.append(with_paper(sci(h) + mark, sci(paper[0])))
                g_cells.append(with_paper(f"{gamma:.3g}{mark}", f"{paper[1]:.2g}"))
                rows.append(
                    {
                        "task": task,
                        "factor": factor,
                        "pair": pair_name(pair),
                        "H": h,
                        "gamma": gamma,
                        "beta_difference": d_beta,
                        "recoverable": not flag,
                        "paper_H": paper[0],
                        "paper_gamma": paper[1],
                        "x_unit": "parameters" if factor == "model_size" else "tokens",
                        "df_unit": "examples",
                    }
                )
            body += [[task, FACTOR_NAMES[factor], "H"] + h_cells, [task, FACTOR_NAMES[factor], "gamma"] + g_cells]
    header = ["task", "scaling factor", "coefficient"] + [pair_name(p) for p in PAIRS]
    caption = (
        "Table 5 computed from the published Table 4: Df_c = H * X^gamma where the gap between the methods "
        "is E_A - E_B, H = (A_A/A_B)^(1/(beta_A-beta_B)), gamma = (alpha_B-alpha_A)/(beta_A-beta_B). "
        + UNITS
        + " Values in parentheses: the published Table 5. †: |beta_A - beta_B| <= "
        f"{NEAR_EQUAL_BETA:g}: H = (A_A/A_B)^(1/(beta_A-beta_B)) is not recoverable from Table 4's "
        "two-digit betas (a rounding step of beta moves it by orders of magnitude)."
    )
    return Table(
        5,
        "critical-point coefficients H and gamma from Table 4",
        tidy_frame(rows),
        [("", markdown_table(header, body))],
        caption,
    )
