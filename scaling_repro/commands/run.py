"""``scaling-repro run``: one run of a recipe, end to end."""

from __future__ import annotations

import argparse
import sys

from scaling_repro.commands.common import add_command, add_recipe_args


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "run",
        "train and evaluate one run of a recipe, writing its result.json",
        """
        Runs one RunSpec: loads the task and its training subset, the base model, wraps it
        with the method (full / prompt / lora), trains with dev-loss checkpointing, evaluates
        the best checkpoint (test loss, generation metrics, zero/few-shot when asked) and
        writes RUN_DIR/result.json (RUN_DIR = output_dir/<name>/<run_id>/). A run that has a
        result is not run again; a run with checkpoints resumes from the latest one.
        Under torchrun every process runs this command; only rank 0 writes files.
        Exit 0 on success, 1 when the run failed (e.g. non-finite loss), 2 on a bad recipe.
        """,
        """
        scaling-repro run recipes/tiny/base.yaml train.max_steps=50
        scaling-repro run recipes/tiny/data_scaling.yaml --index 3
        torchrun --nproc_per_node 8 -m scaling_repro run recipes/paper/wmt14_en_de/model_size_fmt.yaml \\
            --run-id 1a2b3c4d5e6f
        """,
    )
    add_recipe_args(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--index", type=int, help="position of the run in the recipe's sweep (see validate)")
    which.add_argument("--run-id", help="id of the run in the recipe's sweep (see validate)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_repro.commands.outputs import check_output_folder, check_run_folders
    from scaling_repro.config.sweep import load_runs, select_run
    from scaling_repro.pipeline import run_spec
    from scaling_repro.ranks import is_main_process
    from scaling_repro.train import stop

    sweep = load_runs(args.recipe, args.overrides)
    spec = select_run(sweep, index=args.index, run_id=args.run_id)
    check_run_folders([spec])
    check_output_folder(spec.run_dir, "run folder")
    stop.install_preemption_handler()
    try:
        record = run_spec(spec, sweep_source=sweep.source)
    except stop.TrainingPreempted as err:
        if is_main_process():
            print(f"{spec.run_dir}: {err}", file=sys.stderr)
        return stop.EXIT_PREEMPTED
    if is_main_process():
        loss = "" if record.test_loss is None else f", test loss {record.test_loss:.4f}"
        print(f"{spec.run_dir}: {record.status}{loss}")
    return 0 if record.ok else 1
