"""``scaling-repro table N``: one of the paper's tables (2, 4, 5, 6, 7) from a results directory."""

from __future__ import annotations

import argparse
import sys
import textwrap

from scaling_repro.commands.common import add_command
from scaling_repro.commands.figure import RESULTS_HELP, add_results_args, fitted_from_args


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "table",
        "compute a table of the paper (2, 4, 5, 6, 7) from a results directory",
        textwrap.dedent("""
        Tables: 2 / 6 held-out mean absolute deviation of the multiplicative vs additive joint
        laws (2: one task, En-De if present; 6: all tasks); 4 fitted parameters of the
        multiplicative law; 5 H and gamma of the closed-form critical data size Df_c = H * X^gamma;
        7 Pearson r (with p-value) between test PPL and the generation metric. Prints Markdown
        (or CSV with --csv); --out also writes tableNN.md and tableNN.csv. --compare-paper puts
        the published value beside ours where the task, method and factor are the paper's.
        Units: X in parameters / tokens / prompt tokens or LoRA rank; Df in examples.
        Table 2 / 6 name the held-out rule beside every MAD. `table 5 --from-paper` computes
        Table 5 from the published Table 4 (no results needed) beside the published Table 5,
        flagging pairs whose betas are too close for the rounded Table 4 to give H.
        """)
        + RESULTS_HELP,
        """
        scaling-repro table 4 --results runs --compare-paper
        scaling-repro table 7 --results runs --task wmt14_en_de --csv
        scaling-repro table 5 --from-paper
        """,
    )
    parser.add_argument("number", type=int, metavar="N", help="table number: 2, 4, 5, 6 or 7")
    add_results_args(parser, results_required=False)
    parser.add_argument(
        "--from-paper",
        action="store_true",
        help="table 5 only: compute it from the paper's Table 4 instead of a results directory",
    )
    parser.add_argument("--compare-paper", action="store_true", help="show the paper's published values beside ours")
    parser.add_argument("--metric", help="generation metric of table 7 (default: bleurt, rougeL, bleu, chrf)")
    parser.add_argument("--csv", action="store_true", help="print CSV instead of Markdown")
    parser.add_argument("--out", metavar="DIR", help="also write tableNN.md and tableNN.csv into DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_repro.commands.outputs import check_output_folder
    from scaling_repro.errors import UserError
    from scaling_repro.figures.tables import TABLES, make_table

    if args.number not in TABLES:
        raise UserError(f"table: got {args.number}; the paper's tables computed from results are {sorted(TABLES)}")
    if args.out:
        check_output_folder(args.out, "--out")
    if args.from_paper:
        table = _from_paper(args)
    else:
        if not args.results:
            raise UserError("table: --results DIR is required (or, for table 5, --from-paper)")
        table = make_table(fitted_from_args(args), args.number, args.task, args.compare_paper, args.metric)
    print(table.to_csv() if args.csv else table.to_markdown(), end="")
    if args.out and not table.empty:
        for path in table.write(args.out):
            print(f"wrote {path}", file=sys.stderr)
    if table.empty:
        print(f"table {args.number} could not be computed from {args.results or 'the paper'}", file=sys.stderr)
        return 1
    return 0


def _from_paper(args: argparse.Namespace):
    """Return table 5 computed from the paper's Table 4 (``--from-paper``)."""
    from scaling_repro.analysis import published
    from scaling_repro.errors import UserError
    from scaling_repro.figures.paper_tables import table_5_from_paper

    if args.number != 5:
        raise UserError(f"--from-paper computes table 5 only (from the paper's Table 4); got table {args.number}")
    if args.results:
        raise UserError("--from-paper reads no results: drop --results")
    if args.task and args.task not in published.TASKS:
        raise UserError(f"--task: the paper's tasks are {list(published.TASKS)}; got {args.task!r}")
    return table_5_from_paper([args.task] if args.task else published.TASKS)
