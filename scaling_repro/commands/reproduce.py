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

LOG_FILE = "reproduce.log"


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "reproduce",
        "reproduce the paper's study in miniature: pretrain, finetune, fit, report, check the findings",
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
        """,
        """
        scaling-repro reproduce tiny
        scaling-repro reproduce tiny --quick --out /tmp/tiny-quick
        scaling-repro reproduce tiny --jobs 4 --out tiny-study
        """,
    )
    parser.add_argument("study", metavar="STUDY", help="the study to reproduce: 'tiny' (recipes/tiny/study.yaml)")
    parser.add_argument("--quick", action="store_true", help="the small version of the study (CI smoke run)")
    parser.add_argument("--out", metavar="DIR", help="output directory (default reproduce-STUDY[-quick])")
    parser.add_argument("--jobs", type=int, default=2, metavar="N", help="runs at once, one thread each (default 2)")
    parser.add_argument("--plan", metavar="FILE", help="a study plan YAML instead of recipes/STUDY/study.yaml")
    parser.set_defaults(func=run)


def _print_stage(stage) -> None:
    print(f"[{stage.name:8}] {stage.seconds:7.1f} s  {stage.summary}", flush=True)


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
    from scaling_repro.reproduce.study import study_lock

    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: must be at least 1")
    plan = load_plan(args.plan or plan_path(args.study, args.quick))
    out = args.out or f"reproduce-{args.study}{'-quick' if args.quick else ''}"
    check_output_folder(out, "--out")
    Path(out).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with study_lock(out):  # before anything is printed or logged: a second study stops at once
        print(f"reproduce {args.study}: {plan.description or plan.name} -> {out} ({args.jobs} jobs)", flush=True)
        with log_to_file(Path(out).resolve() / LOG_FILE) as log_path:
            try:
                result = reproduce(plan, out, jobs=args.jobs, on_stage=_print_stage, verbose=args.verbose)
            except Exception:
                _log_traceback(log_path)
                raise
    wall = time.perf_counter() - started
    targets = plan.targets
    memory = result.peak_memory_bytes
    memory_text = "not measured" if memory is None else f"{memory / 2**30:.2f} GB"
    within = "within" if wall <= 60 * targets.max_minutes else "OVER"
    print(
        f"\ntotal {wall / 60:.1f} min ({within} the {targets.max_minutes:g}-minute target; this invocation only), "
        f"peak memory {memory_text} (target < {targets.max_memory_gb:g} GB)"
    )
    print(f"\n{findings_table(result.findings)}\n")
    print(f"report: {result.out_dir / 'report'} (findings.md, summary.md, analysis.json); log: {log_path}")
    return 0
