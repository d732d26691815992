"""The checks a GPU runs first, and the command line of ``scripts/gpu_check.py``.

Each check runs in its own try; its row (ok, FAIL: why, skipped: why, error: message) is
written to OUT/gpu.md and OUT/gpu.json as soon as it is measured, with the device, package
versions and git commit at the top. Run directories go to a scratch folder, deleted after
each check. With --smoke every check's code path runs on a CPU at tiny sizes; only what
needs CUDA (flash attention, device memory figures) or an absent DeepSpeed is skipped.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from scaling_repro.gpu_checks.attention import KERNELS, packed_nll
from scaling_repro.gpu_checks.eval_memory import test_loss_memory
from scaling_repro.gpu_checks.pipeline_path import pipeline_path
from scaling_repro.gpu_checks.report import MARKDOWN_FILE, Report, Row, environment
from scaling_repro.gpu_checks.resume import resume
from scaling_repro.gpu_checks.runner import GPU, SMOKE, Check, Context, run_check
from scaling_repro.gpu_checks.train_speed import train_speed
from scaling_repro.gpu_checks.zero3 import zero3

CHECKS: dict[str, Check] = {
    "train speed, WMT-like, 1B FMT recipe path": train_speed("wmt"),
    "train speed, MLSum-like, 1B FMT recipe path": train_speed("mlsum"),
    **{f"packed vs per-example NLL, attention {kernel}": packed_nll(kernel) for kernel in KERNELS},
    "FMT pipeline: train, reload best into a fresh model, evaluate (dtype hooks)": pipeline_path("fmt"),
    "LoRA pipeline: train, reload best into a fresh model, evaluate (dtype hooks)": pipeline_path("lora"),
    "Prompt pipeline: train, reload best into a fresh model, evaluate (dtype hooks)": pipeline_path("prompt"),
    "test loss peak memory, batch 32 x 768 tokens x 256K vocabulary": test_loss_memory(),
    "resume: stop after step 3, rerun, equal loss logs (no DeepSpeed)": resume(None),
    "resume: stop after step 3, rerun, equal loss logs (ZeRO-2)": resume("zero2"),
    "ZeRO-3 on one GPU: sharded construction, 3 steps with checkpointing, the pipeline's reload": zero3(),
}
"""Every check, in the order they run (the costliest last: what --budget-minutes cuts off);
the names are the report's row names."""


def default_scratch() -> Path | None:
    """Return /dev/shm where it has room for the 1B checks' checkpoints (the ZeRO-3 check
    writes ~20 GB; memory is faster than the disk and each check's folder goes when it ends),
    else None (the system's temporary folder)."""
    shm = Path("/dev/shm")
    try:
        return shm if shutil.disk_usage(shm).free >= 48 * 2**30 else None
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Run the checks and write the report; return the exit code: 0, 1 when a check raised
    (its row says error), 2 without a GPU and without --smoke. FAIL rows are findings: 0."""
    parser = argparse.ArgumentParser(
        prog="gpu_check.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: every check's code path on a CPU")
    parser.add_argument("--out", type=Path, default=Path("benchmarks"), help="report folder (default %(default)s)")
    parser.add_argument("--only", nargs="+", metavar="WORD", help="run the checks whose names contain a WORD")
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=8.0,
        help="checks not started within this many minutes get a 'skipped' row (default %(default)s)",
    )
    parser.add_argument(
        "--scratch", type=Path, help="folder for run directories (default: /dev/shm when it has 48 GiB free, else /tmp)"
    )
    args = parser.parse_args(argv)
    import torch

    if not args.smoke and not torch.cuda.is_available():
        print("no CUDA GPU here: run with --smoke to check the code path on the CPU", file=sys.stderr)
        return 2
    if args.smoke:
        os.environ.setdefault("TQDM_DISABLE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    selected = {n: c for n, c in CHECKS.items() if not args.only or any(w in n for w in args.only)}
    report = Report(args.out, "smoke" if args.smoke else "gpu", environment())
    report.write()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.scratch or default_scratch(), prefix="gpu-check-") as scratch:
        ctx = Context(SMOKE if args.smoke else GPU, Path(scratch), args.smoke)
        for name, check in selected.items():
            if time.perf_counter() - started > 60 * args.budget_minutes:
                report.add(Row(name, f"skipped: the {args.budget_minutes:g}-minute budget was spent"))
                continue
            row = run_check(name, check, ctx, report)
            print(f"[{time.perf_counter() - started:6.1f}s] {name}: {row.status}", flush=True)
    print(f"report: {args.out / MARKDOWN_FILE}")
    return 1 if any(row.errored for row in report.rows) else 0
