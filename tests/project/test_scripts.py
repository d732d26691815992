"""Scripts that a person runs by hand still run: their code paths on the CPU, tiny sizes."""

import subprocess
import sys

import pytest

from tests.helpers.paths import REPO

pytestmark = pytest.mark.slow  # each test runs a script in a subprocess


def test_gpu_check_runs_its_code_path_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.md"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    for check in (
        "FMT train",
        "LoRA train",
        "Prompt train",
        "greedy decoding tokens/s",
        "best checkpoint write",
        "Prompt decoding device and autocast",
        "FMT ZeRO-2 steps",
    ):
        assert check in report


def test_gpu_check_without_a_gpu_says_how_to_smoke_test():
    if __import__("torch").cuda.is_available():
        pytest.skip("a GPU is here")
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_check.py")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2 and "--smoke" in done.stderr
