"""Scripts that a person runs by hand still run: their code paths on the CPU, tiny sizes."""

import subprocess
import sys

import pytest

from tests.helpers.paths import REPO

pytestmark = pytest.mark.slow  # each test runs a script in a subprocess


def test_gpu_check_without_a_gpu_says_how_to_smoke_test():
    if __import__("torch").cuda.is_available():
        pytest.skip("a GPU is here")
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_check.py")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2 and "--smoke" in done.stderr
