"""``scaling-repro advise``: which finetuning method the fitted laws predict is best."""

from __future__ import annotations

import argparse
import json

from scaling_repro.commands.common import add_command, coverage_level
from scaling_repro.commands.figure import add_results_args, fitted_from_args


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "advise",
        "predict the best finetuning method (FMT / Prompt / LoRA) for a model size and data budget",
        """
        Fits the paper's multiplicative joint law per method to the results (model-size
        experiment, joint procedure) and predicts each method's test loss at --model-size
        (parameters) and --budget-examples (finetuning examples), with bootstrap intervals from
        resampling the whole fitting procedure. Also prints the critical data sizes at that model
        size (where two methods tie) and which method is best on which range of data sizes.
        --from-paper uses the paper's Table 4 instead of results (X in raw parameters, Df in
        examples; tasks wmt14_en_de, wmt19_en_zh, mlsum; no intervals).
        Sizes accept suffixes: 1B, 350M, 8K, 1.5M, or plain numbers such as 1e9.
        """,
        """
        scaling-repro advise --from-paper --task wmt19_en_zh --model-size 1B --budget-examples 50K
        scaling-repro advise --results runs --task synthetic_mt --model-size 3.2M --budget-examples 2000
        """,
    )
    add_results_args(parser, results_required=False)
    parser.add_argument("--model-size", required=True, metavar="X", help="model parameters, e.g. 1B or 1e9")
    parser.add_argument("--budget-examples", required=True, metavar="N", help="finetuning examples, e.g. 50K")
    parser.add_argument("--from-paper", action="store_true", help="use the paper's Table 4 laws instead of results")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=200,
        metavar="N",
        help="bootstrap replicates for intervals (default 200; 0: none)",
    )
    parser.add_argument("--level", type=coverage_level, default=0.9, help="interval coverage (default 0.9)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print the advice as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_repro.analysis.advice import advise, format_advice
    from scaling_repro.analysis.numbers import parse_quantity
    from scaling_repro.errors import UserError

    if not args.task:
        raise UserError("--task is required: the task whose laws to use (e.g. wmt14_en_de)")
    if args.from_paper == bool(args.results):
        raise UserError("give exactly one of --results DIR (laws fitted to your runs) or --from-paper (Table 4)")
    if args.bootstrap < 0 or args.bootstrap == 1:
        raise UserError(f"--bootstrap: got {args.bootstrap}; use 0 (no intervals) or >= 2 replicates")
    fitted = None if args.from_paper else fitted_from_args(args)
    advice = advise(
        args.task,
        parse_quantity(args.model_size, "--model-size"),
        parse_quantity(args.budget_examples, "--budget-examples"),
        fitted=fitted,
        from_paper=args.from_paper,
        bootstrap=args.bootstrap,
        level=args.level,
        seed=args.seed,
    )
    print(json.dumps(advice.to_dict(), indent=2) if args.json else format_advice(advice))
    return 0
