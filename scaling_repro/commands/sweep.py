"""``scaling-repro sweep``: run every run of a recipe's sweep that is not done yet."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from scaling_repro.commands.common import add_command, add_recipe_args, positive_seconds
from scaling_repro.errors import UserError

BACKENDS = ("local", "torchrun", "slurm")


def register(subparsers) -> None:
    from scaling_repro.launch.claims import DEFAULT_STALE_AFTER
    from scaling_repro.launch.order import ORDERS
    from scaling_repro.launch.slurm import CLUSTERS

    parser = add_command(
        subparsers,
        "sweep",
        "run a recipe's whole sweep: locally, with torchrun, or as a Slurm array job",
        """
        Runs every run of the recipe's sweep that is not done yet, cheapest first. Safe to run
        again and again, and from several shells or machines sharing the output directory:
          - a run whose result.json says ok is skipped; one with only checkpoints resumes;
          - a failed run (result.json 'failed: ...') is skipped unless --rerun-failed;
          - a result.json this user cannot read (a teammate's, not group-readable) is left as
            it is, with a warning, even with --rerun-failed;
          - a worker claims a run with a lock file (host, pid, start time) before running it,
            so two workers never run the same run; a stale claim (its process is dead on this
            host, or no heartbeat for --stale-after seconds) is taken over; a damaged claim
            file is named in a warning and taken over --stale-after seconds after it last
            changed;
          - a worker whose claim was taken over (it was stopped or hung for longer than
            --stale-after) stops that run, records nothing for it and reports it as a lost
            claim (not a failure);
          - a run that fails is recorded as failed with its reason, the sweep goes on, and the
            summary at the end lists the failures (exit status 1 when any run failed);
          - SIGTERM (Slurm preemption, scancel, kill) is passed on to the running runs, which
            checkpoint; they count as interrupted (not failed), no new run starts, and the
            sweep exits with status 143.

        Backends:
          local     one run after another in this process; with --jobs N (CPU) N runs at once,
                    each in a child process with one torch thread; with --gpus 0,1,2,3 one run
                    per GPU at a time, each as a subprocess with CUDA_VISIBLE_DEVICES set (logs
                    in <run dir>/run.log)
          torchrun  each run as `torchrun --standalone --nproc_per_node <launch.gpus_per_node>
                    -m scaling_repro run RECIPE ... --run-id ID`, one after another
          slurm     one submitit array job per distinct `launch` section (GPUs, time, partition,
                    account, cpus, memory, extra sbatch options); tasks requeue on preemption

        Cheapest first estimates each run's cost as model parameters (from the model name) x
        examples processed (step budget x batch, capped by epochs x data) x 3 (FMT) or 2 (PET).
        Follow progress with `scaling-repro status RECIPE`.
        """,
        """
        scaling-repro sweep recipes/tiny/data_scaling.yaml
        scaling-repro sweep recipes/tiny/data_scaling.yaml method.kind=lora --max-runs 4
        scaling-repro sweep recipes/tiny/model_size.yaml --jobs 2
        scaling-repro sweep recipes/paper/wmt14_en_de/model_size_lora.yaml --backend local --gpus 0,1,2,3
        scaling-repro sweep recipes/paper/wmt14_en_de/model_size_fmt.yaml --backend torchrun
        scaling-repro sweep recipes/paper/wmt14_en_de/model_size_fmt.yaml launch.partition=gpu --backend slurm --dry-run
        """,
    )
    add_recipe_args(parser)
    parser.add_argument("--backend", choices=BACKENDS, default="local", help="how runs are executed (default local)")
    parser.add_argument(
        "--gpus",
        metavar="LIST",
        help="local backend: comma-separated GPU ids, one concurrent run per GPU, e.g. 0,1,2,3",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="local backend on CPU: N runs at once, each in a child process with one torch thread (default 1)",
    )
    parser.add_argument(
        "--rerun-failed",
        action="store_true",
        help="retry runs that failed before this sweep started (a run failing again is not retried twice)",
    )
    parser.add_argument(
        "--order", choices=ORDERS, default="cheapest", help="cheapest runs first (default) or recipe order"
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be run or submitted, run nothing")
    parser.add_argument("--max-runs", type=int, metavar="N", help="start at most N runs (skipped runs do not count)")
    parser.add_argument(
        "--stale-after",
        type=positive_seconds,
        default=DEFAULT_STALE_AFTER,
        metavar="SECONDS",
        help=f"a claim without heartbeat for this long is taken over (default {DEFAULT_STALE_AFTER:.0f}); "
        "claims of dead processes on this host are taken over at once",
    )
    slurm = parser.add_argument_group("slurm backend")
    slurm.add_argument("--wait", action="store_true", help="wait for the array job(s) and print the summary")
    slurm.add_argument("--array-parallelism", type=int, metavar="N", help="at most N tasks of an array at once")
    slurm.add_argument(
        "--submitit-cluster",
        choices=CLUSTERS,
        default="slurm",
        help="submitit executor: slurm, or local/debug to run the same array job on this machine",
    )
    parser.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> list[str] | None:
    """Validate flag combinations; return the GPU list of --gpus."""
    if args.gpus is not None and args.backend != "local":
        raise UserError(f"--gpus {args.gpus}: only the local backend takes --gpus (got --backend {args.backend})")
    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: must be at least 1")
    if args.jobs > 1 and (args.backend != "local" or args.gpus is not None):
        raise UserError(f"--jobs {args.jobs}: only the local backend without --gpus runs CPU jobs in parallel")
    if args.max_runs is not None and args.max_runs < 1:
        raise UserError(f"--max-runs {args.max_runs}: must be at least 1")
    if args.stale_after <= 0:
        raise UserError(f"--stale-after {args.stale_after}: must be a positive number of seconds")
    if args.backend != "slurm" and (args.wait or args.array_parallelism or args.submitit_cluster != "slurm"):
        raise UserError("--wait, --array-parallelism and --submitit-cluster need --backend slurm")
    if args.array_parallelism is not None and args.array_parallelism < 1:
        raise UserError(f"--array-parallelism {args.array_parallelism}: must be at least 1")
    if args.gpus is None:
        return None
    gpus = [gpu.strip() for gpu in args.gpus.split(",")]
    if not all(gpu.isdigit() for gpu in gpus) or len(set(gpus)) != len(gpus):
        raise UserError(f"--gpus {args.gpus!r}: expected distinct GPU ids separated by commas, e.g. 0,1,2,3")
    return gpus


def run(args: argparse.Namespace) -> int:
    from scaling_repro.commands.outputs import check_run_folders
    from scaling_repro.config.sweep import load_runs
    from scaling_repro.launch import (
        RunTarget,
        SweepOptions,
        format_local_plan,
        format_summary,
        order_runs,
        plan_sweep,
        preemption,
        run_local,
        run_torchrun,
    )
    from scaling_repro.train.stop import EXIT_PREEMPTED

    gpus = _check_args(args)
    sweep = load_runs(args.recipe, args.overrides)
    target = RunTarget(Path(args.recipe).resolve(), tuple(args.overrides))
    options = SweepOptions(
        retry_failed_before=time.time() if args.rerun_failed else None,
        stale_after=args.stale_after,
        max_runs=args.max_runs,
    )
    specs = order_runs(sweep.runs, args.order)
    check_run_folders(specs)
    sweep_dir = specs[0].run_dir.parent
    title = f"{sweep_dir} ({args.backend})"
    if args.backend == "slurm":
        return _run_slurm(args, specs, target, options, sweep_dir, title)
    if args.dry_run:
        todo, skipped = plan_sweep(specs, options)
        print(format_local_plan(todo, skipped, target, args.backend, gpus))
        return 0
    if args.backend == "local" and not gpus:
        target.function()  # import the pipeline now: a broken install must not fail every run
    with preemption.handled():
        if args.backend == "torchrun":
            outcomes = run_torchrun(specs, target, options)
        else:
            outcomes = run_local(specs, target, options, gpus, jobs=args.jobs)
        preempted = preemption.preempting()
    print(format_summary(outcomes, title))
    if preempted:
        print(f"{title}: stopped by SIGTERM; interrupted runs resume when the sweep is started again")
        return EXIT_PREEMPTED
    return 1 if any(o.kind == "failed" for o in outcomes) else 0


def _run_slurm(args, specs, target, options, sweep_dir: Path, title: str) -> int:
    from scaling_repro.launch import format_summary, plan_sweep, slurm
    from scaling_repro.launch.plan import describe_skipped

    todo, skipped = plan_sweep(specs, options)
    arrays = slurm.plan_arrays(todo, args.array_parallelism)
    folder = sweep_dir / slurm.SLURM_DIR
    if args.dry_run:
        print(f"{title}: {len(todo)} run(s) to submit; {describe_skipped(skipped)}")
        print(slurm.format_plan(arrays, target, folder))
        return 0
    if not todo:
        print(format_summary(skipped, title))
        return 0
    jobs = slurm.submit(arrays, target, options, folder, cluster=args.submitit_cluster)
    job_ids = sorted({str(job.job_id).split("_")[0] for job in jobs})
    print(
        f"submitted {len(jobs)} run(s) as job(s) {', '.join(job_ids)} (logs in {folder}); "
        f"{describe_skipped(skipped)}; follow with `scaling-repro status {args.recipe}`"
    )
    if not args.wait:
        return 0
    outcomes = slurm.wait(jobs, [spec for array in arrays for spec in array.specs])
    print(format_summary([*outcomes, *skipped], title))
    return 1 if any(o.kind == "failed" for o in outcomes) else 0
