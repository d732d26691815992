"""``scaling-repro validate`` of a huge sweep: a grid of 10^6 runs is refused before any run
is built, in seconds and little memory, with one line naming the count and the limit; a grid
of 10^5 runs, under the limit, still validates within 1 GB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from scaling_repro.config.sweep import MAX_SWEEP_RUNS
from tests.helpers.paths import REPO, pythonpath

GB = 2**30
# Runs `scaling-repro validate ARGS` and writes its own peak memory (ru_maxrss, KiB on Linux)
# to the file named by argv[1]: the peak of this child alone, not of every child pytest waited for.
MEASURED = """
import resource, sys
from scaling_repro.cli import main
try:
    code = main(["validate", *sys.argv[2:]])
except SystemExit as exit_:
    code = exit_.code
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
sys.exit(code)
"""


def _grid_recipe(path, ranks: int):
    """A LoRA recipe whose grid has 10 x 10 x 100 x ``ranks`` runs."""
    data = {
        "name": "grid",
        "output_dir": str(path.parent / "runs"),
        "task": {"name": "synthetic_mt", "train_examples": 100},
        "model": {"name": "tiny-s"},
        "method": {"kind": "lora"},
        "sweep": {
            "grid": {
                "task.train_examples": [100 * (i + 1) for i in range(10)],
                "task.seed": list(range(10)),
                "method.lr": [1e-4 * (i + 1) for i in range(100)],
                "method.rank": list(range(1, ranks + 1)),
            }
        },
    }
    path.write_text(yaml.safe_dump(data))
    return path


def _validate(tmp_path, recipe):
    """Return (exit status, stdout, stderr, seconds, peak bytes) of validating ``recipe``."""
    rss_file = tmp_path / "maxrss"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, str(rss_file), str(recipe), "--limit", "2"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": pythonpath()},
        cwd=REPO,
        timeout=300,
    )
    seconds = time.perf_counter() - started
    return done.returncode, done.stdout, done.stderr, seconds, int(rss_file.read_text())


def test_a_million_run_grid_is_refused_in_seconds_with_one_line(tmp_path):
    code, out, err, seconds, peak = _validate(tmp_path, _grid_recipe(tmp_path / "million.yaml", ranks=100))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "1,000,000 runs" in lines[0] and f"at most {MAX_SWEEP_RUNS:,}" in lines[0], err
    assert seconds < 10 and peak < GB, (seconds, peak)


@pytest.mark.slow
def test_a_grid_of_100k_runs_still_validates_within_1_gb(tmp_path):
    code, out, err, seconds, peak = _validate(tmp_path, _grid_recipe(tmp_path / "100k.yaml", ranks=10))
    assert code == 0, err[-2000:]
    assert "100000 run(s)" in out
    print(json.dumps({"seconds": round(seconds, 1), "peak_mb": peak // 2**20}))  # measured: ~9 s, ~540 MB
    assert peak < GB, peak
