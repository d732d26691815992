"""Opt-in parity with the reference implementation: a real BLEURT-20 checkpoint (set
``SCALING_REPRO_BLEURT_CHECKPOINT`` to its directory, e.g. a download of
``lucadiliello/BLEURT-20``) scores the reference's example pairs as the reference publishes.

Published scores of bleurt-pytorch (the PyTorch port whose checkpoints this loader reads), on
the pairs of its examples:
- BLEURT-20: the model card of ``lucadiliello/BLEURT-20`` on the Hugging Face hub
  (https://huggingface.co/lucadiliello/BLEURT-20/blob/main/README.md): [0.9990496635437012, 0.7930182218551636];
- BLEURT-20-D12: the README of https://github.com/lucadiliello/bleurt-pytorch (commit 279ca1b):
  [0.9604414105415344, 0.8080050349235535].
google-research/bleurt's README scores ("This is a test.", "This is the test.") without printing a
score, so it gives no number to compare with.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scaling_repro.evaluate.bleurt import CHECKPOINT_ENV, load_bleurt

REFERENCES = ["a bird chirps by the window", "this is a random sentence"]
CANDIDATES = ["a bird chirps by the window", "this looks like a random sentence"]
PUBLISHED = {  # number of layers -> (checkpoint, its published scores)
    32: ("BLEURT-20", [0.9990496635437012, 0.7930182218551636]),
    12: ("BLEURT-20-D12", [0.9604414105415344, 0.8080050349235535]),
}


def _checkpoint() -> Path:
    configured = os.environ.get(CHECKPOINT_ENV)
    if not configured:
        pytest.skip(f"set {CHECKPOINT_ENV} to a BLEURT-20 checkpoint directory to compare with the reference")
    return Path(configured).expanduser()


@pytest.mark.slow
def test_published_scores_of_the_reference_on_its_example_pairs():
    path = _checkpoint()
    layers = json.loads((path / "config.json").read_text())["num_hidden_layers"]
    if layers not in PUBLISHED:
        pytest.skip(f"{path} has {layers} layers: no published scores for it (BLEURT-20: 32, BLEURT-20-D12: 12)")
    name, expected = PUBLISHED[layers]
    scores = load_bleurt(str(path)).score(REFERENCES, CANDIDATES)
    assert scores == pytest.approx(expected, abs=1e-2), f"{name} at {path}"
