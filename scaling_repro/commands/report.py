"""``scaling-repro report``: every figure and table the results support, with an index.md."""

from __future__ import annotations

import argparse
import textwrap

from scaling_repro.commands.common import add_command
from scaling_repro.commands.figure import (
    RESULTS_HELP,
    add_results_args,
    experiment_pairs,
    formats,
)


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "report",
        "draw every figure and table the results support into one directory with an index.md",
        textwrap.dedent("""
        Writes OUT/figures (PNG and PDF of figures 1-14 per task), OUT/tables (Markdown and CSV
        of tables 2, 4, 5, 6, 7, with the paper's values beside ours), OUT/fits.json (every joint
        fit), OUT/findings.md (the paper's seven findings judged per task, as `scaling-repro
        findings` prints them) and OUT/index.md: the experiments found, the verdicts, the figures
        embedded, the tables, and what could not be drawn with the runs missing for it.
        """)
        + RESULTS_HELP,
        """
        scaling-repro report --results runs --out report
        scaling-repro report --results runs --out report --task synthetic_mt --format png --dpi 150
        """,
    )
    add_results_args(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="report directory")
    parser.add_argument(
        "--no-compare-paper",
        dest="compare_paper",
        action="store_false",
        help="leave the paper's published values out of the tables",
    )
    parser.add_argument("--metric", help="generation metric (default: bleurt, rougeL, bleu, chrf, whichever present)")
    parser.add_argument("--format", default="png,pdf", help="figure formats, comma-separated (default png,pdf)")
    parser.add_argument("--dpi", type=int, default=200, help="PNG resolution (default 200)")
    parser.add_argument(
        "--bootstrap", type=int, default=200, metavar="N", help="bootstrap replicates behind the findings (default 200)"
    )
    parser.add_argument("--no-findings", dest="findings", action="store_false", help="leave findings.md out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_repro.commands.outputs import check_output_folder
    from scaling_repro.config.analysis_settings import AnalysisSettings
    from scaling_repro.errors import UserError
    from scaling_repro.report.results_report import build_report

    check_output_folder(args.out, "--out")
    if args.bootstrap < 0:
        raise UserError(f"--bootstrap: got {args.bootstrap}; allowed: an integer >= 0 (0 = no replicates)")
    report = build_report(
        args.results,
        args.out,
        task=args.task,
        compare_paper=args.compare_paper,
        metric=args.metric,
        holdout=args.holdout,
        experiments=experiment_pairs(args.experiment),
        dpi=args.dpi,
        formats=formats(args.format),
        findings=AnalysisSettings(bootstrap=args.bootstrap) if args.findings else None,
    )
    drawn = sum(f.drawn for f in report.figures)
    print(
        f"wrote {report.index}: {drawn}/{len(report.figures)} figures, "
        f"{sum(not t.empty for t in report.tables)}/{len(report.tables)} tables"
        + (f", {report.findings.name}" if report.findings else "")
    )
    for item, notes in report.missing.items():
        print(f"  {item}: {notes[0][:160]}" + (f" (+{len(notes) - 1} more in index.md)" if len(notes) > 1 else ""))
    return 0
