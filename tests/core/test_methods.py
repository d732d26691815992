"""apply_method: which parameters train for FMT / Prompt / LoRA, their counts, seeded inits,
and adapter checkpoints that reload to the same logits."""

import pytest
import torch

from scaling_repro.config.recipe import FullMethod, LoraMethod, PromptMethod
from scaling_repro.errors import UserError
from scaling_repro.methods import apply_method
from tests.helpers.models_testing import batch, make_tokenizer, tiny_model

D, LAYERS, FFN, HEAD, VOCAB = 32, 2, 64, 16, 64  # tiny-xs with the 64-entry test tokenizer
BASE_PARAMS = LAYERS * (2 * D * D + 2 * D * HEAD + 3 * D * FFN + 2 * D) + D + VOCAB * D


def train_step(method_model):
    """One forward/backward with labels; returns the loss."""
    ids = batch()
    out = method_model.model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids)
    out.loss.backward()
    return out.loss


def with_grad(model):
    return {name for name, p in model.named_parameters() if p.grad is not None}


def test_full_trains_every_parameter():
    wrapped = apply_method(tiny_model(), FullMethod(), seed=0)
    train_step(wrapped)
    assert wrapped.trainable_params == wrapped.total_params == BASE_PARAMS
    assert with_grad(wrapped.model) == {name for name, _ in wrapped.model.named_parameters()}
    assert wrapped.pet_params is None


def test_prompt_tuning_trains_only_the_prompt():
    wrapped = apply_method(tiny_model(), PromptMethod(prompt_length=10), seed=0)
    train_step(wrapped)
    assert with_grad(wrapped.model) == {"prompt_encoder.default.embedding.weight"}
    assert wrapped.trainable_params == 10 * D
    assert wrapped.total_params == BASE_PARAMS + 10 * D
    assert wrapped.pet_params == 10


def test_lora_trains_only_the_adapters():
    wrapped = apply_method(tiny_model(), LoraMethod(rank=4), seed=0)
    train_step(wrapped)
    trained = with_grad(wrapped.model)
    assert trained and all(".lora_A." in name or ".lora_B." in name for name in trained)
    assert wrapped.pet_params == 4


def test_lora_counts_match_hand_computed_numbers():
    # rank x (in + out) for q (32->32), k and v (32->16), o (32->32), gate and up (32->64), down (64->32)
    per_layer = 4 * ((D + D) + 2 * (D + HEAD) + (D + D) + 2 * (D + FFN) + (FFN + D))
    wrapped = apply_method(tiny_model(), LoraMethod(rank=4), seed=0)
    assert wrapped.trainable_params == LAYERS * per_layer == 4096
    assert wrapped.total_params == BASE_PARAMS + LAYERS * per_layer


def test_lora_adapts_every_block_projection_but_not_the_lm_head():
    wrapped = apply_method(tiny_model(), LoraMethod(rank=2), seed=0)
    adapted = {name.split(".")[-1] for name, m in wrapped.model.named_modules() if hasattr(m, "lora_A")}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.mark.parametrize("rank, alpha, scaling", [(4, None, 1.0), (16, None, 1.0), (4, 8.0, 2.0)])
def test_lora_alpha_defaults_to_the_rank(rank, alpha, scaling):
    wrapped = apply_method(tiny_model(), LoraMethod(rank=rank, alpha=alpha), seed=0)
    q_proj = wrapped.model.base_model.model.model.layers[0].self_attn.q_proj
    assert q_proj.scaling["default"] == scaling


def prompt_of(wrapped):
    return wrapped.model.prompt_encoder["default"].embedding.weight.detach().clone()


def test_sample_vocab_prompt_is_vocabulary_rows_drawn_from_the_seed():
    first, again, other = (apply_method(tiny_model(), PromptMethod(prompt_length=12), seed=s) for s in (1, 1, 2))
    vocabulary = first.model.get_input_embeddings().weight
    assert torch.equal(prompt_of(first), prompt_of(again))
    assert not torch.equal(prompt_of(first), prompt_of(other))
    assert all((vocabulary == row).all(dim=1).any() for row in prompt_of(first))


def test_text_prompt_is_the_text_token_embeddings_repeated():
    tokenizer = make_tokenizer()
    method = PromptMethod(prompt_length=5, init="text", init_text="w1 w2")
    wrapped = apply_method(tiny_model(), method, seed=0, tokenizer=tokenizer)
    ids = tokenizer("w1 w2 w1 w2 w1", add_special_tokens=False)["input_ids"]
    expected = wrapped.model.get_input_embeddings().weight[ids]
    assert torch.equal(prompt_of(wrapped), expected)


def test_text_prompt_without_a_tokenizer_is_a_user_error():
    with pytest.raises(UserError, match="tokenizer"):
        apply_method(tiny_model(), PromptMethod(init="text", init_text="w1"), seed=0)


def test_apply_method_leaves_the_global_rng_as_it_was():
    torch.manual_seed(7)
    expected = torch.rand(3)
    model = tiny_model()
    torch.manual_seed(7)
    apply_method(model, PromptMethod(prompt_length=4), seed=0)
    assert torch.equal(torch.rand(3), expected)
