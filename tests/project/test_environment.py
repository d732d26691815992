"""The locked environment: the lock agrees with pyproject.toml, and our code uses no API that
the locked versions deprecate."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers.paths import REPO


def _lock_script():
    spec = importlib.util.spec_from_file_location("lock_script", REPO / "scripts" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_lock_agrees_with_pyproject():
    lock = _lock_script()
    assert lock.disagreements(lock.read_pins(lock.LOCK_CPU), lock.project_requirements()) == []


def test_the_cpu_lock_includes_the_torch_free_lock_and_pins_torch():
    lock = _lock_script()
    shared, cpu = lock.read_pins(lock.LOCK), lock.read_pins(lock.LOCK_CPU)
    assert "torch" not in shared and "torch" in cpu
    assert shared.items() <= cpu.items()


def test_check_names_a_pin_outside_the_range(tmp_path):
    lock = _lock_script()
    bad = tmp_path / "lock.txt"
    bad.write_text(f"# a comment\n-c {lock.LOCK}\ntorch==1.0.0\n")
    problems = lock.disagreements(lock.read_pins(bad), lock.project_requirements())
    assert len(problems) == 1 and problems[0].startswith("torch==1.0.0 in the lock is outside")


def test_check_names_a_requirement_the_lock_leaves_out(tmp_path):
    lock = _lock_script()
    bad = tmp_path / "lock.txt"
    bad.write_text("numpy==2.0.0\n")
    problems = lock.disagreements(lock.read_pins(bad), lock.project_requirements())
    assert any(problem.startswith("torch (dependencies") for problem in problems)
    assert not any(problem.startswith("numpy") for problem in problems)


def test_check_refuses_a_line_that_is_not_an_exact_pin(tmp_path):
    lock = _lock_script()
    bad = tmp_path / "lock.txt"
    bad.write_text("numpy>=2\n")
    with pytest.raises(ValueError, match="not an exact pin"):
        lock.read_pins(bad)


_THREE_METHODS = """
import json, sys
from pathlib import Path
from scaling_repro.cli import main
from scaling_repro.data.synthetic import pretraining_corpus
from scaling_repro.models.tokenizer import train_tokenizer
out = Path(sys.argv[1])
train_tokenizer(pretraining_corpus(2000, parallel_share=0.3), 300, out / "tok")
for kind, extra in [("full", ""), ("lora", ", rank: 2"), ("prompt", ", prompt_length: 4")]:
    recipe = out / f"{kind}.yaml"
    recipe.write_text(f'''
name: api-{kind}
output_dir: {json.dumps(str(out / "runs"))}
task: {{name: synthetic_mt, train_examples: 16, dev_examples: 8, test_examples: 8}}
model: {{name: tiny-xs, init: random, tokenizer: {json.dumps(str(out / "tok"))}}}
method: {{kind: {kind}, lr: 3.0e-3, batch_size: 8{extra}}}
train: {{optimizer: adafactor, max_steps: 2, eval_every: 1, threads: 1}}
eval: {{batch_size: 8, max_generate_examples: 2, max_new_tokens: 4}}
''')
    assert main(["run", str(recipe)]) == 0
"""

# Deprecated calls made inside a library, not by our code (checked at the locked versions).
THIRD_PARTY_DEPRECATIONS = (
    "`is_gradient_checkpointing` is deprecated",  # peft's PeftModel.__init__ probes it
)


@pytest.mark.slow
def test_training_and_evaluation_use_no_deprecated_api(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "always", "TRANSFORMERS_VERBOSITY": "warning"}
    done = subprocess.run(
        [sys.executable, "-c", _THREE_METHODS, str(tmp_path)], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    deprecations = [line for line in re.split(r"[\r\n]", done.stderr) if re.search(r"deprecat", line, re.I)]
    ours = [line for line in deprecations if not any(known in line for known in THIRD_PARTY_DEPRECATIONS)]
    assert ours == [], json.dumps(ours, indent=1)
