"""Fixtures of the pipeline tests: a tiny tokenizer and a one-run recipe that trains in seconds."""

import json

import pytest

from scaling_repro.data.synthetic import pretraining_corpus
from scaling_repro.models.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(pretraining_corpus(3000, parallel_share=0.3), 300, out)
    return out


@pytest.fixture
def recipe(tmp_path, tokenizer_dir):
    path = tmp_path / "run.yaml"
    path.write_text(f"""
name: pipe
output_dir: {json.dumps(str(tmp_path / "runs"))}
task: {{name: synthetic_mt, train_examples: 64, dev_examples: 16, test_examples: 16}}
model: {{name: tiny-xs, init: random, tokenizer: {json.dumps(str(tokenizer_dir))}}}
method: {{kind: full, lr: 3.0e-3, batch_size: 16}}
train: {{optimizer: adamw, max_steps: 8, eval_every: 4, threads: 1}}
eval: {{batch_size: 16, max_generate_examples: 4, max_new_tokens: 8}}
""")
    return path
