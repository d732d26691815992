"""Benchmark of ``scaling-repro status`` on a large recipe. Prints wall times; run from the
repository root:

    python scripts/bench_status.py                 # 100000 runs, half of them with a result
    python scripts/bench_status.py --runs 10000
    python scripts/bench_status.py --dir /tmp/bench --profile   # keep the tree; cProfile the status call

The recipe is a grid over ``task.train_examples`` x ``task.seed`` (10) x ``method.rank`` (10),
as a paper sweep is over data size, seed and PET size. Every other run gets a small real
``result.json`` (an ok RunRecord of its spec), written once into the directory; a second
invocation with the same ``--dir`` and ``--runs`` reuses it. Timed:
``load_runs`` (expanding and validating the recipe) and the status command's handler
(``scaling_repro.commands.status.run``: load the recipe, read every run directory, format the
report), each the best of ``--repeat`` tries.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import pstats
import tempfile
import time
from pathlib import Path

from scaling_repro.commands.status import run as status_command
from scaling_repro.config.sweep import load_runs
from scaling_repro.launch.claims import DEFAULT_STALE_AFTER
from scaling_repro.results import RESULT_FILE, RunRecord

SEEDS = 10
RANKS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def write_recipe(root: Path, runs: int) -> Path:
    """Write a recipe of ``runs`` runs whose runs go to ``root/runs``: a grid over data size x
    seed x LoRA rank (over data size alone when ``runs`` is no multiple of 100)."""
    if runs % (SEEDS * len(RANKS)) == 0:
        sizes = runs // (SEEDS * len(RANKS))
        grid = {"task.train_examples": list(range(1, sizes + 1)), "task.seed": list(range(SEEDS)), "method.rank": RANKS}
    else:
        grid = {"task.train_examples": list(range(1, runs + 1))}
    text = (
        f"name: bench\noutput_dir: {json.dumps(str(root / 'runs'))}\n"
        "task: {name: synthetic_mt}\nmodel: {name: tiny-s}\nmethod: {kind: lora}\n"
        f"sweep:\n  grid: {json.dumps(grid)}\n"
    )
    path = root / f"recipe-{runs}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_results(recipe: Path) -> int:
    """Write an ok ``result.json`` for every other run of ``recipe``; return how many."""
    written = 0
    for spec in load_runs(recipe).runs[::2]:
        record = RunRecord(
            run_id=spec.run_id,
            name=spec.name,
            status="ok",
            spec=spec.model_dump(mode="json"),
            task=spec.task.name,
            method=spec.method.kind,
            model=spec.model.name,
            finetune_examples=spec.task.train_examples,
            seed=spec.task.seed,
            wall_seconds=60.0,
        )
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        (spec.run_dir / RESULT_FILE).write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
        written += 1
    return written


def best_of(repeat: int, call) -> float:
    """Return the shortest wall time of ``repeat`` calls of ``call``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def run_status(recipe: Path) -> str:
    """Run the status command's handler on ``recipe``; return what it printed."""
    args = argparse.Namespace(target=str(recipe), overrides=[], stale_after=DEFAULT_STALE_AFTER)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status_command(args)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the recipe (default 100000)")
    parser.add_argument("--dir", type=Path, help="keep the recipe and results here (default: a temporary dir)")
    parser.add_argument("--repeat", type=int, default=1, help="time each call this many times, keep the best")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one status call")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        root = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-status-")))
        root.mkdir(parents=True, exist_ok=True)
        recipe = root / f"recipe-{args.runs}.yaml"
        if not recipe.is_file():
            started = time.perf_counter()
            recipe = write_recipe(root, args.runs)
            written = write_results(recipe)
            print(f"built {args.runs} runs ({written} results) in {time.perf_counter() - started:.1f} s: {root}")
        load = best_of(args.repeat, lambda: load_runs(recipe))
        print(f"load_runs: {load:.2f} s for {args.runs} runs")
        status = best_of(args.repeat, lambda: run_status(recipe))
        print(f"status:    {status:.2f} s for {args.runs} runs")
        print("           " + run_status(recipe).splitlines()[1].strip())
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(run_status, recipe)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
