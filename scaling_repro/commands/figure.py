"""``scaling-repro figure N``: draw one of the paper's figures (1-14) from a results directory."""

from __future__ import annotations

import argparse
import sys
import textwrap

from scaling_repro.commands.common import add_command

RESULTS_HELP = """
Runs are grouped into experiments by what they vary (model_params, pretrain_tokens or
pet_params, each against the finetuning data size; see scaling_repro.analysis.experiments).
Held-out points: the largest x and the largest Df of each experiment (the paper's rule, the same as
`reproduce`); --holdout auto uses the runs marked by their recipe's sweep.holdout instead.
"""


def add_results_args(parser: argparse.ArgumentParser, results_required: bool = True) -> None:
    """Add the options that select and group the runs of a results directory."""
    from scaling_repro.analysis.fitted_results import DEFAULT_HOLDOUT

    parser.add_argument(
        "--results", required=results_required, metavar="DIR", help="results directory (every result.json under it)"
    )
    parser.add_argument("--task", help="only this task (default: every task in the results)")
    parser.add_argument(
        "--holdout",
        default=DEFAULT_HOLDOUT,
        help=f"held-out points: {DEFAULT_HOLDOUT!r} (default: the largest x and Df), 'auto' (marked runs, else "
        "the largest x and Df), 'marked', "
        "'none', 'largest', 'largest-x', 'largest-df' (':K' for the K largest; '+' combines)",
    )
    parser.add_argument(
        "--experiment",
        action="append",
        default=[],
        metavar="FACTOR=NAME",
        help="use only runs of recipe NAME for FACTOR (model_size, pretrain_data, pet_size); repeatable",
    )


def experiment_pairs(items: list[str]) -> dict[str, list[str]]:
    """Return factor -> recipe names from repeated ``--experiment FACTOR=NAME`` options."""
    from scaling_repro.errors import UserError

    out: dict[str, list[str]] = {}
    for item in items:
        factor, sep, name = item.partition("=")
        if not sep or not factor.strip() or not name.strip():
            raise UserError(f"--experiment: expected FACTOR=NAME (e.g. model_size=tiny-model-scaling), got {item!r}")
        out.setdefault(factor.strip(), []).append(name.strip())
    return out


def fitted_from_args(args: argparse.Namespace):
    """Return the FittedResults that the options of :func:`add_results_args` describe."""
    from scaling_repro.analysis.fitted_results import FittedResults

    return FittedResults.from_dir(args.results, holdout=args.holdout, experiments=experiment_pairs(args.experiment))


def formats(text: str) -> tuple[str, ...]:
    """Return the file formats of a comma-separated list, checked."""
    from scaling_repro.errors import UserError

    chosen = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in chosen if f not in ("png", "pdf", "svg")]
    if bad or not chosen:
        raise UserError(f"--format: got {text!r}; allowed: png, pdf, svg, comma-separated (e.g. png,pdf)")
    return chosen


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "figure",
        "draw a figure of the paper (1-14) from a results directory",
        textwrap.dedent("""
        Figures: 1 single-variable data-scaling fits per model size; 2 model size x finetuning
        data (joint fits); 3 pretraining data x finetuning data; 4 PET size x finetuning data;
        5 critical data sizes between methods; 6 zero-shot scores; 7-9 BLEURT/RougeL (or any
        metric) counterparts of 2-4; 10 base-model loss vs model size (un-finetuned runs,
        train.max_steps=0); 11-14 one-/five-shot scores after finetuning vs the Baseline.
        One PNG and PDF per task (figure 10: one for all tasks). When runs are missing, the
        figure draws what it can and says which runs are missing.
        """)
        + RESULTS_HELP,
        """
        scaling-repro figure 2 --results runs --out figures
        scaling-repro figure 7 --results runs --task synthetic_mt --metric chrf --format png
        """,
    )
    parser.add_argument("number", type=int, metavar="N", help="figure number, 1-14")
    add_results_args(parser)
    parser.add_argument("--out", default="figures", metavar="DIR", help="output directory (default ./figures)")
    parser.add_argument(
        "--metric",
        help="generation metric of figures 6-9, 11-14 (default: bleurt, rougeL, bleu, chrf, whichever the runs have)",
    )
    parser.add_argument("--format", default="png,pdf", help="file formats, comma-separated (default png,pdf)")
    parser.add_argument("--dpi", type=int, default=200, help="PNG resolution (default 200)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_repro.commands.outputs import check_output_folder
    from scaling_repro.figures.registry import FigureOptions, figure_spec, render_figure

    check_output_folder(args.out, "--out")
    figure_spec(args.number)
    fitted = fitted_from_args(args)
    options = FigureOptions(metric=args.metric, dpi=args.dpi, formats=formats(args.format))
    result = render_figure(fitted, args.number, args.out, fitted.check_task(args.task), options)
    for path in result.files:
        print(f"wrote {path}")
    for note in result.notes:
        print(f"missing: {note}", file=sys.stderr)
    if not result.drawn:
        print(f"figure {args.number} could not be drawn from {args.results}", file=sys.stderr)
        return 1
    return 0
