"""Two CPU processes (gloo): sharded greedy decoding and test loss equal the single-process results."""

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.helpers.paths import HELPERS

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sharded_evaluation_over_two_processes_equals_single_process(tmp_path):
    out = tmp_path / "result.json"
    worker = HELPERS / "evaluate_distributed_worker.py"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        str(worker),
        str(out),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["processes"] == 2
    assert result["sharded"]["outputs"] == result["reference"]["outputs"]
    assert result["sharded"]["tokens"] == result["reference"]["tokens"]
    assert result["sharded"]["nll"] == pytest.approx(result["reference"]["nll"], rel=1e-5)
