"""Benchmark of ``scaling-repro findings`` on the paper's whole grid. Prints wall and CPU times;
run from the repository root:

    python scripts/bench_findings.py                    # 3 tasks, Table 1b's grid, 3 seeds per point
    python scripts/bench_findings.py --seeds 9          # ~4,300 result.json per task
    python scripts/bench_findings.py --dir /tmp/grid    # keep (and reuse) the results directory

The results are generated from Table 4's laws plus noise (:mod:`scaling_repro.analysis.synthetic`),
written once; a second invocation with the same ``--dir`` and ``--seeds`` reuses them. Timed: the
command's handler (read every result.json, fit every method of every task with ``--bootstrap``
replicates, judge the seven findings), wall time and this process's CPU time. Target: under 60 s
wall on 2 cores at the defaults. On a busy machine the wall time is not the figure to read: the
CPU time is what an idle machine's wall time comes close to.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

from scaling_repro.analysis.synthetic import write_synthetic_results
from scaling_repro.commands.findings import run as findings_command


def results_dir(root: Path, seeds: int) -> Path:
    """Return a directory of the paper's grid with ``seeds`` seeds per point, written unless it exists."""
    out = root / f"paper-grid-{seeds}-seeds"
    if not (out / "done").exists():
        started = time.perf_counter()
        results = write_synthetic_results(out, runs=seeds, noise=0.005, seed=0)
        (out / "done").write_text("")
        print(f"wrote {len(results.records)} result.json in {time.perf_counter() - started:.1f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="runs per point (default 3, the paper's)")
    parser.add_argument("--bootstrap", type=int, default=200, help="replicates per method (default 200)")
    parser.add_argument("--dir", type=Path, help="where the results are written (default: a temporary directory)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        root = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        results = results_dir(root, args.seeds)
        files = sum(1 for _ in results.rglob("result.json"))
        namespace = argparse.Namespace(
            results=str(results), task=None, holdout="largest", experiment=[], json=None, markdown=None,
            bootstrap=args.bootstrap, level=0.9,
        )  # fmt: skip
        wall, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            findings_command(namespace)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(printed.getvalue())
        what = f"{files} result.json (3 tasks, {args.bootstrap} replicates)"
        print(f"findings on {what}: {wall:.1f} s wall, {cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
