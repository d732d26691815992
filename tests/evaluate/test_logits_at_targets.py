"""Test loss computes logits only where a target token is predicted, from contiguous logits, in
batches capped in tokens, and the model evaluated after training carries no float32 output wrapper."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model

import scaling_repro.models.nll as nll
from scaling_repro.evaluate.perplexity import batch_nll, token_batches
from scaling_repro.models.nll import output_head, predicted_tokens, target_nll_sum
from scaling_repro.train.eval_weights import drop_precision_wrapper
from tests.evaluate.test_perplexity import EXAMPLES, batch_of, hand_nll, tiny_llama
from tests.evaluate.test_perplexity import tokenizer as tokenizer  # noqa: F401  (the fixture)


def lora(vocab: int) -> torch.nn.Module:
    return get_peft_model(tiny_llama(vocab), LoraConfig(task_type=TaskType.CAUSAL_LM, r=2, target_modules="all-linear"))


def prompt_tuned(vocab: int) -> torch.nn.Module:
    return get_peft_model(tiny_llama(vocab), PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3))


@pytest.mark.parametrize("build", [tiny_llama, lora, prompt_tuned], ids=["full", "lora", "prompt"])
def test_the_lm_head_sees_only_the_rows_that_predict_a_target(tokenizer, build):
    model = build(len(tokenizer)).eval()
    _, batch = batch_of(tokenizer, EXAMPLES)
    seen: list[tuple[int, ...]] = []
    output_head(model).register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    got = batch_nll(model, batch)
    targets = int(predicted_tokens(batch["labels"]))
    assert got.tokens == targets
    assert seen == [(targets, 32)]  # one row per target token, of hidden size 32
    assert targets < batch["input_ids"].numel() / 2  # the prompts got no logits


def test_test_loss_is_the_loss_over_every_position_to_1e6(tokenizer):
    model = tiny_llama(len(tokenizer))
    encoded, batch = batch_of(tokenizer, EXAMPLES)
    every_position = float(nll.token_nll_sum(model, batch, keep_logits=False).detach())
    by_hand, _ = hand_nll(lambda ids: model(ids).logits, encoded)
    with torch.no_grad():
        at_targets = float(target_nll_sum(model, batch))
    assert at_targets == pytest.approx(every_position, rel=1e-6)
    assert at_targets == pytest.approx(by_hand, rel=1e-6)


@pytest.mark.parametrize("keep_logits", [False, True])
@pytest.mark.parametrize("build", [tiny_llama, prompt_tuned], ids=["full", "prompt"])
def test_the_loss_reads_the_models_logits_without_copying_them(tokenizer, monkeypatch, build, keep_logits):
    model = build(len(tokenizer)).eval()
    _, batch = batch_of(tokenizer, EXAMPLES)
    scored = []
    original = nll.summed_cross_entropy

    def check(logits, targets, chunk_elements=nll.CE_CHUNK_ELEMENTS):
        scored.append((logits.is_contiguous(), logits.reshape(-1, logits.shape[-1])._base is not None))
        return original(logits, targets, chunk_elements)

    monkeypatch.setattr(nll, "summed_cross_entropy", check)
    nll.token_nll_sum(model, batch, keep_logits=keep_logits)
    assert scored == [(True, True)]  # contiguous, and flattened as a view of them


def test_evaluation_batches_are_capped_in_padded_tokens():
    lengths = [700, 650, 600, 100, 90, 80, 20]
    spans = token_batches(lengths, batch_size=32, max_batch_tokens=1400)
    assert [list(s) for s in spans] == [[0, 1], [2, 3], [4, 5, 6]]  # 2 x 700, 2 x 600, 3 x 90
    assert [list(s) for s in token_batches(lengths, batch_size=3, max_batch_tokens=None)] == [[0, 1, 2], [3, 4, 5], [6]]


def test_an_example_longer_than_the_token_cap_is_a_batch_of_its_own():
    assert [list(s) for s in token_batches([5000, 10], batch_size=8, max_batch_tokens=1000)] == [[0], [1]]


def test_the_float32_output_wrapper_comes_off_the_trained_model(tokenizer):
    from accelerate import Accelerator

    from scaling_repro.train.distributed import reset_accelerator_state

    model = tiny_llama(len(tokenizer))
    reset_accelerator_state()  # another test may have set up Accelerate in this process already
    Accelerator(mixed_precision="bf16", cpu=True).prepare(model)
    reset_accelerator_state()
    _, batch = batch_of(tokenizer, EXAMPLES[:1])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(input_ids=batch["input_ids"]).logits.dtype == torch.float32  # Accelerate's wrapper
        drop_precision_wrapper(model)
        assert model(input_ids=batch["input_ids"]).logits.dtype == torch.bfloat16
    assert "_original_forward" not in model.__dict__ and "forward" not in model.__dict__
