"""``scaling-repro findings``: the paper's seven findings judged on any results directory."""

from __future__ import annotations

import argparse
import textwrap

from scaling_repro.commands.common import add_command, coverage_level
from scaling_repro.commands.figure import RESULTS_HELP, add_results_args, experiment_pairs


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "findings",
        "judge the paper's seven findings on a results directory, per task",
        textwrap.dedent("""
        For every task with a model-size experiment per method, fits the paper's laws (with
        bootstrap replicates that resample each point's seeds and the fitting points) and prints
        each finding's verdict (reproduced / not reproduced / inconclusive / not testable) with
        one line of why. The criteria are stated in findings.md (`scaling-repro report` writes
        it); --json writes every verdict with its numbers. Experiments are found from the
        records' factors, as for figures. How each finding is judged: docs/findings.md.
        """)
        + RESULTS_HELP,
        """
        scaling-repro findings --results runs
        scaling-repro findings --results runs --task wmt14_en_de --json findings.json --markdown findings.md
        """,
    )
    add_results_args(parser)
    parser.add_argument("--json", metavar="PATH", help="also write every verdict, its numbers and reason as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write findings.md (criteria and evidence) here")
    parser.add_argument(
        "--bootstrap", type=int, default=200, metavar="N", help="bootstrap replicates per method (default 200)"
    )
    parser.add_argument("--level", type=coverage_level, default=0.9, help="coverage of the decisions (default 0.9)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_repro.analysis.fitted_results import FittedResults
    from scaling_repro.analysis.judge import findings_table_text, judged_markdown, write_findings_json
    from scaling_repro.config.analysis_settings import AnalysisSettings
    from scaling_repro.errors import UserError
    from scaling_repro.fileio import atomic_write_text

    if args.bootstrap < 0:
        raise UserError(f"--bootstrap: got {args.bootstrap}; allowed: an integer >= 0 (0 = no replicates)")
    settings = AnalysisSettings(bootstrap=args.bootstrap, level=args.level)
    fitted = FittedResults.from_dir(args.results, holdout=args.holdout, experiments=experiment_pairs(args.experiment))
    judged = judge(fitted, settings, args.task)
    print(findings_table_text(judged))
    if args.json:
        print(f"wrote {write_findings_json(args.json, judged)}")
    if args.markdown:
        atomic_write_text(args.markdown, judged_markdown(judged) + "\n")
        print(f"wrote {args.markdown}")
    return 0


def judge(fitted, settings, task):
    """Return the judged tasks of ``fitted`` (a progress line per task on a terminal)."""
    from tqdm.auto import tqdm

    from scaling_repro.analysis.judge import judge_task

    tasks = fitted.check_task(task)
    return [judge_task(fitted, t, settings) for t in tqdm(tasks, desc="judging tasks", disable=None, leave=False)]
