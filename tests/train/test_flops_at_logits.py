"""Model FLOPs count the LM head only where logits are computed (the target tokens)."""

from __future__ import annotations

import pytest
import torch

from scaling_repro.models.configs import build_config, build_model
from scaling_repro.train.throughput import ModelFlops, matmul_params


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return build_model(build_config("tiny-s", 1000), device="meta")


def test_the_lm_head_is_counted_apart_from_the_body(model):
    shape = ModelFlops.of(model)
    head = model.get_output_embeddings().weight
    assert shape.head_total == shape.head_trainable == head.numel()
    assert shape.matmul_total == matmul_params(model)[0] > shape.head_total


def test_lm_head_flops_are_counted_at_target_tokens_only(model):
    shape = ModelFlops.of(model)
    body, head = shape.matmul_total - shape.head_total, shape.head_total
    tokens, targets, squared = 600, 250, 600 * 60
    attention = 12 * shape.layers * shape.attention_dim * squared
    counted = shape.training_flops(tokens, squared, examples=10, logit_positions=targets)
    assert counted == pytest.approx(6 * body * tokens + 6 * head * targets + attention)
    every_position = shape.training_flops(tokens, squared, examples=10)
    assert every_position - counted == pytest.approx(6 * head * (tokens - targets))


def test_frozen_lm_head_costs_forward_and_input_gradient_only():
    model = build_model(build_config("tiny-s", 1000), device="meta")
    for param in model.parameters():
        param.requires_grad_(False)
    shape = ModelFlops.of(model)
    assert shape.head_trainable == shape.matmul_trainable == 0
    head = shape.head_total
    counted = shape.training_flops(100, 0, logit_positions=40) - shape.training_flops(100, 0, logit_positions=0)
    assert counted == pytest.approx(4 * head * 40)


def test_prompt_tuning_virtual_tokens_run_the_body_but_get_no_logits(model):
    plain = ModelFlops.of(model)
    prompted = ModelFlops(**{**plain.__dict__, "virtual_tokens": 20})
    body = plain.matmul_total - plain.head_total
    extra = prompted.training_flops(100, 0, examples=2, logit_positions=40) - plain.training_flops(
        100, 0, examples=2, logit_positions=40
    )
    attention = 12 * plain.layers * plain.attention_dim * (2 * 20 * 100 + 20 * 20 * 2)
    assert extra == pytest.approx(6 * body * 40 + attention)
