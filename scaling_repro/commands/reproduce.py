"""``scaling-repro reproduce``: run a whole study (pretrain, finetune, fit, report) in one command.

The terminal shows the stage lines, progress bars, warnings and the fits' progress; every log
line goes to ``OUT/reproduce.log`` (``-v`` shows them all on the terminal too), and so does the
traceback of an error that ends the study (the terminal gets one line for a full disk or a
read-only folder, see :mod:`scaling_repro.cli`).
"""

from __future__ import annotations

import argparse
import contextlib
import time
import traceback
from pathlib import Path

from scaling_repro.commands.common import add_command
from scaling_repro.config.study_plan import SIZES

LOG_FILE = "reproduce.log"


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "reproduce",
        "reproduce the paper's study from a plan (tiny, pythia): data, base models, finetune, fit, report, findings",
        """
        `reproduce tiny` is the embedded default: on one CPU, offline, in minutes. It builds the
        synthetic translation task and trains its tokenizer, pretrains the tiny model ladder
        (tiny-xs..tiny-l, with intermediate checkpoints of tiny-m for the pretraining-data axis),
        finetunes FMT, Prompt and LoRA to convergence at five finetuning data sizes on every model
        size plus the pretraining-data and PET-size axes, evaluates test loss, BLEU/chrF and
        zero-shot test loss and chrF,
        fits the multiplicative and additive laws with the largest model / data size held out, and
        writes OUT/report/: summary.md (Table 2- and Table 4-style tables, critical data sizes,
        measured checks), analysis.json, figures, and findings.md, which checks each of the
        paper's seven findings from the numbers.

        The plan is recipes/<study>/study.yaml (--quick: quick.yaml, fewer and smaller runs, the
        same code path). Interrupt it at any time: running it again continues where it stopped,
        and a finished study is re-reported in seconds. After editing a finetuning recipe, the
        same --out trains only the changed runs and fits the plan's runs only (results of runs no
        longer in the plan are left out, and counted); after editing the pretraining recipe it
        stops with an error naming the change, as its base models would be stale: use a new --out.
        Runs execute --jobs at a time, each in a
        child process with one torch thread (on a shared or small machine one thread per process
        is much faster than several threads). Every log line goes to OUT/reproduce.log; the
        terminal shows the stage lines and progress (-v: every line). One study at a time per
        OUT: a second `reproduce` on the same OUT exits at once (status 2) naming the first.

        `reproduce pythia` runs the same stages on the plan recipes/open/pythia_SIZE.yaml: Pythia
        models from the hub (160M-2.8B, Pythia-1B's revisions step40000-step143000), WMT14
        En-De, FMT / prompt tuning / LoRA, 3 seeds (docs/pythia.md). --size small|medium|full
        trades grid density and the largest model for GPU-hours; --quick runs it on CPU with
        offline stand-ins. Every study first prints its plan: runs per recipe and method,
        estimated GPU-hours (the trainer's cost model), what each finding needs from the grid;
        --dry-run stops there. --gpus 0,1,.. runs one run per GPU (torchrun over several for
        runs that ask for more); --backend slurm submits array jobs and waits for them.
        """,
        """
        scaling-repro reproduce tiny
        scaling-repro reproduce tiny --quick --out /tmp/tiny-quick
        scaling-repro reproduce tiny --jobs 4 --out tiny-study
        scaling-repro reproduce pythia --size small --dry-run
        scaling-repro reproduce pythia --size medium --gpus 0,1,2,3 --out pythia-medium
        scaling-repro reproduce pythia --quick
        """,
    )
    parser.add_argument(
        "study",
        metavar="STUDY",
        help="the study to reproduce: 'tiny' (recipes/tiny/study.yaml) or 'pythia' (recipes/open/pythia_SIZE.yaml)",
    )
    parser.add_argument("--quick", action="store_true", help="the small version of the study (CI smoke run)")
    parser.add_argument("--size", choices=SIZES, help="a sized study's plan (pythia: default small)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and its estimated cost; run nothing")
    parser.add_argument("--gpus", metavar="LIST", help="run on these local GPUs, e.g. 0,1,2,3 (default: the plan's)")
    parser.add_argument("--backend", choices=("local", "slurm"), help="where runs execute (default: the plan's)")
    parser.add_argument("--out", metavar="DIR", help="output directory (default reproduce-STUDY[-SIZE|-quick])")
    parser.add_argument("--jobs", type=int, default=2, metavar="N", help="runs at once, one thread each (default 2)")
    parser.add_argument("--plan", metavar="FILE", help="a study plan YAML instead of recipes/STUDY/study.yaml")
    parser.set_defaults(func=run)


def _print_stage(stage) -> None:
    print(f"[{stage.name:8}] {stage.seconds:7.1f} s  {stage.summary}", flush=True)


def _plan_text(plan, path: Path, out_dir: Path | None, execution, size: str | None) -> str:
    """The plan printed before a study starts (:mod:`scaling_repro.reproduce.plan_print`)."""
    from scaling_repro.reproduce.plan_print import cost_basis, format_plan, size_estimates
    from scaling_repro.reproduce.stages import load_finetune_specs

    specs = load_finetune_specs(plan)
    sizes = size_estimates(path) or None
    current = size or ("small" if sizes and path.stem.endswith("_small") else None)
    where = execution.describe()
    if execution.backend == "slurm":
        arrays = {(str(recipe), spec.launch.model_dump_json()) for spec, recipe in specs}
        where += f"; {len(arrays)} array jobs (one per recipe and launch section)"
    return format_plan(plan, specs, cost_basis(plan, out_dir), where, sizes, current)


def _targets_text(plan, wall: float, memory: int | None) -> str:
    """The wall time and peak memory of this invocation against the plan's targets."""
    targets = plan.targets
    text = f"total {wall / 60:.1f} min"
    if targets.max_minutes is not None:
        within = "within" if wall <= 60 * targets.max_minutes else "OVER"
        text += f" ({within} the {targets.max_minutes:g}-minute target; this invocation only)"
    text += f", peak memory {'not measured' if memory is None else f'{memory / 2**30:.2f} GB'}"
    if targets.max_memory_gb is not None:
        text += f" (target < {targets.max_memory_gb:g} GB)"
    return text


def _log_traceback(log_path: Path) -> None:
    """Append the traceback being handled to the study's log (not on a full disk)."""
    with contextlib.suppress(OSError), open(log_path, "a", encoding="utf-8") as handle:
        handle.write(traceback.format_exc())


def run(args: argparse.Namespace) -> int:
    from scaling_repro.analysis.findings import findings_table
    from scaling_repro.commands.outputs import check_output_folder
    from scaling_repro.errors import UserError
    from scaling_repro.logs import log_to_file
    from scaling_repro.reproduce import load_plan, plan_path, reproduce
    from scaling_repro.reproduce.finetune import Execution
    from scaling_repro.reproduce.study import study_lock

    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: must be at least 1")
    if args.quick and args.size:
        raise UserError(f"--quick and --size {args.size}: choose one")
    path = Path(args.plan) if args.plan else plan_path(args.study, args.quick, size=args.size)
    plan = load_plan(path)
    gpus = None if args.gpus is None else [g.strip() for g in args.gpus.split(",") if g.strip()]
    execution = Execution.of(plan, args.jobs, gpus, args.backend)
    suffix = "-quick" if args.quick else f"-{args.size}" if args.size else ""
    out = args.out or f"reproduce-{args.study}{suffix}"
    if args.dry_run:
        print(_plan_text(plan, path, None, execution, args.size))
        return 0
    check_output_folder(out, "--out")
    Path(out).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with study_lock(out):  # before anything is printed or logged: a second study stops at once
        print(f"reproduce {args.study}: {plan.description or plan.name} -> {out} ({args.jobs} jobs)", flush=True)
        print(_plan_text(plan, path, Path(out).resolve(), execution, args.size) + "\n", flush=True)
        with log_to_file(Path(out).resolve() / LOG_FILE) as log_path:
            try:
                result = reproduce(
                    plan, out, jobs=args.jobs, on_stage=_print_stage, verbose=args.verbose, execution=execution
                )
            except Exception:
                _log_traceback(log_path)
                raise
    wall = time.perf_counter() - started
    print("\n" + _targets_text(plan, wall, result.peak_memory_bytes))
    print(f"\n{findings_table(result.findings)}\n")
    print(f"report: {result.out_dir / 'report'} (findings.md, summary.md, analysis.json); log: {log_path}")
    return 0
