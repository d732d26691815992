"""The declared torch floor works: install it with the rest of the lock and train a tiny run.

    python scripts/check_floors.py                   # torch floor from pyproject, CPU wheel (~3-6 min)
    python scripts/check_floors.py --torch-index pypi   # where download.pytorch.org is unreachable

In a fresh venv it installs ``torch==FLOOR`` (FLOOR is the ``torch>=`` bound in
pyproject.toml; the CPU wheel from download.pytorch.org by default), then the project with
``requirements/lock.txt`` (the lock without torch, so every other package is at its locked
version), prints the versions, and runs ``scaling-repro run`` on a one-run recipe (a random
``tiny-xs`` model, the synthetic MT task, 8 AdamW steps with evaluation) whose result.json must
be ok. Exit 0 when it is, 1 otherwise. Slow and networked: not part of the test suite.

``--torch-index pypi`` takes torch from PyPI: on Linux x86_64 that is the CUDA build with its
nvidia-* wheels (~3 GB), which runs on a CPU too.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "lock.txt"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# Runs inside the fresh venv: a tokenizer, a one-run recipe, `scaling-repro run`, the record.
_TINY_RUN = """
import json, sys
from pathlib import Path
from scaling_repro.cli import main
from scaling_repro.config.sweep import load_runs
from scaling_repro.data.synthetic import pretraining_corpus
from scaling_repro.models.tokenizer import train_tokenizer
from scaling_repro.results import read_record

out = Path(sys.argv[1])
train_tokenizer(pretraining_corpus(3000, parallel_share=0.3), 300, out / "tok")
recipe = out / "run.yaml"
recipe.write_text(f'''
name: floors
output_dir: {json.dumps(str(out / "runs"))}
task: {{name: synthetic_mt, train_examples: 64, dev_examples: 16, test_examples: 16}}
model: {{name: tiny-xs, init: random, tokenizer: {json.dumps(str(out / "tok"))}}}
method: {{kind: full, lr: 3.0e-3, batch_size: 16}}
train: {{optimizer: adamw, max_steps: 8, eval_every: 4, threads: 1}}
eval: {{batch_size: 16, max_generate_examples: 4, max_new_tokens: 8}}
''')
code = main(["run", str(recipe)])
record = read_record(load_runs(recipe).runs[0].run_dir)
print(json.dumps({"exit": code, "ok": record.ok, "steps": record.steps, "test_loss": record.test_loss}))
sys.exit(0 if code == 0 and record.ok and record.steps == 8 else 1)
"""

_VERSIONS = """
import importlib.metadata as m
print(", ".join(f"{p} {m.version(p)}" for p in ("torch", "transformers", "accelerate", "peft", "datasets", "numpy")))
"""


def torch_floor(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """Return the version of pyproject's ``torch>=`` floor; raise ValueError without one."""
    for text in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        found = re.fullmatch(r"torch\s*>=\s*([0-9][0-9.]*)\s*(,.*)?", text.strip())
        if found:
            return found.group(1)
    raise ValueError(f"{pyproject}: no 'torch>=X' requirement among the dependencies")


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, check=True, **kwargs)


def check(torch_version: str, torch_index: str, venv: Path) -> int:
    """Install ``torch_version`` and the locked project into ``venv`` and train the tiny run;
    return 0 when its result is ok, else 1."""
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q"]
    index = (
        [] if torch_index == "pypi" else ["--index-url", torch_index, "--extra-index-url", "https://pypi.org/simple"]
    )
    _run([*pip, f"torch=={torch_version}", *index])
    _run([*pip, "-c", str(LOCK), "-e", str(ROOT)])
    print(_run([python, "-c", _VERSIONS], capture_output=True, text=True).stdout.strip(), flush=True)
    with tempfile.TemporaryDirectory() as work:
        started = time.monotonic()
        result = subprocess.run([python, "-c", _TINY_RUN, work], capture_output=True, text=True)
        print(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "", flush=True)
        if result.returncode:
            print(result.stderr[-4000:], file=sys.stderr)
        verdict = "passed" if result.returncode == 0 else "FAILED"
        print(f"floors check {verdict}: torch {torch_version}, tiny run {time.monotonic() - started:.0f} s")
    return 1 if result.returncode else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run :func:`check`; return its exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch", default=None, help="torch version to install (default: pyproject's floor)")
    parser.add_argument(
        "--torch-index", default=CPU_INDEX, help="index for torch, or 'pypi' for PyPI's wheel (default: %(default)s)"
    )
    parser.add_argument("--venv", type=Path, default=None, help="keep the venv here (default: a deleted temp dir)")
    args = parser.parse_args(argv)
    version = args.torch or torch_floor()
    if args.venv is not None:
        return check(version, args.torch_index, args.venv)
    with tempfile.TemporaryDirectory() as tmp:
        return check(version, args.torch_index, Path(tmp) / "venv")


if __name__ == "__main__":
    sys.exit(main())
