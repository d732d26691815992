"""Test loss: token-level NLL of the target tokens, for full, prompt-tuned and LoRA models."""

import math

import pytest
import torch
from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

import scaling_repro.evaluate.perplexity as perplexity
from scaling_repro.data.collate import IGNORE_INDEX, collate_for_lm, encode_examples
from scaling_repro.data.types import Example, TaskInfo
from scaling_repro.evaluate.perplexity import NllSum, batch_nll, corpus_nll, losses_per_set, overall
from scaling_repro.models.tokenizer import train_tokenizer
from scaling_repro.ranks import ProcessInfo

INFO = TaskInfo(name="toy", source_lang="en", target_lang="de", metrics=("bleu",), template="{source} =>")
EXAMPLES = [
    Example("the cat sits", "die katze sitzt"),
    Example("a big dog runs in the park", "ein grosser hund rennt im park"),
    Example("good morning", "guten morgen"),
    Example("the dog and the cat", "der hund und die katze"),
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    texts = [e.source for e in EXAMPLES] + [e.target for e in EXAMPLES]
    return train_tokenizer(texts * 3, vocab_size=120, out_dir=tmp_path_factory.mktemp("tok"), min_frequency=1)


def tiny_llama(vocab_size, seed=0):
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        intermediate_size=64,
        vocab_size=vocab_size,
        initializer_range=0.3,
    )
    return LlamaForCausalLM(config).eval()


def batch_of(tokenizer, examples):
    encoded = encode_examples(tokenizer, examples, INFO, log_counts=False)
    return encoded, collate_for_lm(encoded, tokenizer.pad_token_id)


def hand_nll(logits_fn, encoded):
    """Sum of -log p(target token) over each example's labelled positions, one example at a time."""
    total, count = 0.0, 0
    for example in encoded:
        ids = torch.tensor([example.input_ids])
        log_probs = torch.log_softmax(logits_fn(ids)[0].double(), dim=-1)
        for t in range(1, len(example.input_ids)):
            if example.labels[t] != IGNORE_INDEX:
                total -= log_probs[t - 1, example.labels[t]].item()
                count += 1
    return total, count


def test_perplexity_is_exp_of_hand_computed_target_nll(tokenizer):
    model = tiny_llama(len(tokenizer))
    encoded, batch = batch_of(tokenizer, EXAMPLES)
    nll, count = hand_nll(lambda ids: model(ids).logits, encoded)
    got = corpus_nll(model, [batch])
    assert got.tokens == count == sum(len(e.input_ids) - e.prompt_length for e in encoded)
    assert got.mean == pytest.approx(nll / count, rel=1e-5)
    assert got.perplexity == pytest.approx(math.exp(nll / count), rel=1e-5)


def test_prompt_tuned_loss_excludes_virtual_tokens(tokenizer):
    model = get_peft_model(
        tiny_llama(len(tokenizer)), PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=5)
    )
    with torch.no_grad():
        model.prompt_encoder["default"].embedding.weight.normal_(0, 1.0)
    model.eval()
    base = model.get_base_model()
    soft_prompt = model.get_prompt(batch_size=1)

    def logits_with_prompt(ids):  # the soft prompt, then the text; keep the text's logits
        embeds = torch.cat([soft_prompt, base.get_input_embeddings()(ids)], dim=1)
        return base(inputs_embeds=embeds).logits[:, soft_prompt.shape[1] :]

    encoded, batch = batch_of(tokenizer, EXAMPLES)
    nll, count = hand_nll(logits_with_prompt, encoded)
    got = batch_nll(model, batch)
    assert got.tokens == count
    assert got.mean == pytest.approx(nll / count, rel=1e-5)
    assert got.mean != pytest.approx(batch_nll(base, batch).mean, rel=1e-3)  # the prompt matters


def test_lora_loss_matches_unbatched_hand_computation(tokenizer):
    model = get_peft_model(
        tiny_llama(len(tokenizer)), LoraConfig(task_type=TaskType.CAUSAL_LM, r=2, target_modules="all-linear")
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.3)
    model.eval()
    encoded, batch = batch_of(tokenizer, EXAMPLES)
    nll, count = hand_nll(lambda ids: model(input_ids=ids).logits, encoded)
    assert batch_nll(model, batch).mean == pytest.approx(nll / count, rel=1e-5)


def test_overall_loss_weights_sets_by_tokens_not_by_set():
    losses = {"a": NllSum(10.0, 10), "b": NllSum(1.0, 5)}
    assert overall(losses).mean == pytest.approx(11 / 15)
    assert overall(losses).mean != pytest.approx((1.0 + 0.2) / 2)


def test_sharded_losses_sum_to_the_unsharded_ones(tokenizer, monkeypatch):
    model = tiny_llama(len(tokenizer))
    encoded = {
        "x": encode_examples(tokenizer, EXAMPLES, INFO, log_counts=False),
        "y": encode_examples(tokenizer, EXAMPLES[:3], INFO, log_counts=False),
    }

    def collate(batch):
        return collate_for_lm(batch, tokenizer.pad_token_id)

    full = losses_per_set(model, encoded, collate, batch_size=2)
    monkeypatch.setattr(perplexity, "gather_objects", lambda local, process: [local])  # no process group
    shards = [losses_per_set(model, encoded, collate, 2, ProcessInfo(i, 3)) for i in range(3)]
    for name in encoded:
        assert sum(s[name].tokens for s in shards) == full[name].tokens
        assert sum(s[name].nll for s in shards) == pytest.approx(full[name].nll, rel=1e-5)
