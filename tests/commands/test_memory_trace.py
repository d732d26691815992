"""Peak GPU memory traced on fake tensors: no real memory, grows with the batch, and evaluation
computes logits at the target tokens only."""

from __future__ import annotations

import dataclasses

import pytest

from scaling_repro.launch.memory_trace import Shape, trace_shape

pytestmark = pytest.mark.slow  # each trace runs a model on fake tensors: seconds

TINY = Shape(
    model="tiny-s",
    method="lora",
    pet_size=4,
    weights_dtype="float32",
    zero_stage=0,
    world=1,
    checkpointing=False,
    micro_batch=4,
    length=64,
    target_tokens=32,
    eval_batch=4,
    generate_batch=4,
    prompt_tokens=32,
    new_tokens=8,
)


@pytest.fixture(scope="module")
def tiny():
    return trace_shape(TINY)


def test_a_trace_gives_train_and_eval_peaks_above_the_fixed_allowance(tiny):
    assert tiny.train_bytes > 2 * 2**30 and tiny.eval_bytes > 2 * 2**30


def test_a_larger_micro_batch_traces_more_training_memory(tiny):
    assert trace_shape(dataclasses.replace(TINY, micro_batch=16)).train_bytes > tiny.train_bytes


def test_prompt_tuning_and_full_finetuning_trace_too():
    for method, size in (("prompt", 8), ("full", 0)):
        estimate = trace_shape(dataclasses.replace(TINY, method=method, pet_size=size))
        assert estimate.train_bytes > 0 and estimate.eval_bytes > 0
