"""``scaling-repro evaluate``: re-evaluate a finished run without retraining."""

from __future__ import annotations

import argparse

from scaling_repro.commands.common import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "evaluate",
        "re-evaluate a run's best checkpoint and update its result.json",
        """
        Rebuilds the run from RUN_DIR/spec.json, loads its best checkpoint and runs the
        evaluation again, optionally with changed eval settings (e.g. a new metric or a BLEURT
        checkpoint). Training fields of result.json are kept, evaluation fields replaced.
        """,
        """
        scaling-repro evaluate runs/tiny/0597f6e5b47e
        scaling-repro evaluate runs/tiny/0597f6e5b47e eval.metrics=[bleu,chrf,bleurt] \\
            eval.bleurt_checkpoint=/ckpt/BLEURT-20-D12
        """,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory holding spec.json")
    parser.add_argument(
        "overrides",
        metavar="KEY=VALUE",
        nargs="*",
        help="eval.* overrides for this evaluation, e.g. eval.few_shot=[1,5]",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_repro.pipeline import reevaluate

    record = reevaluate(args.run_dir, args.overrides)
    print(
        f"{args.run_dir}: test loss {record.test_loss}, metrics "
        + ", ".join(f"{m}={v.get('all', float('nan')):.3f}" for m, v in record.metrics.items())
    )
    return 0
