"""Batched greedy decoding: equal to one-at-a-time decoding, prompt tuning, LoRA, EOS, sharding."""

import pytest
import torch
from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM

from scaling_repro.data.collate import left_pad
from scaling_repro.evaluate.generate import greedy_batch, greedy_generate
from scaling_repro.evaluate.sharding import merge_shards
from scaling_repro.ranks import ProcessInfo

PAD, BOS, EOS = 0, 1, 2
PROMPTS = [[BOS, 5, 6, 7, 8, 9, 10, 11], [BOS, 12, 13], [BOS, 14, 15, 16, 17], [BOS, 18], [BOS, 19, 20, 21]]


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    """A random Llama whose attention is sharp enough (large init) for positions to matter."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        intermediate_size=64,
        vocab_size=300,
        initializer_range=0.5,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
    )
    return LlamaForCausalLM(config).eval()


def tiny_pythia(seed: int = 0) -> GPTNeoXForCausalLM:
    """A random GPT-NeoX (the Pythia architecture of the open recipes): partial rotary, parallel blocks."""
    torch.manual_seed(seed)
    config = GPTNeoXConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        vocab_size=300,
        rotary_pct=0.25,
        initializer_range=0.5,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
    )
    return GPTNeoXForCausalLM(config).eval()


def prompt_tuned(seed: int = 0):
    model = get_peft_model(tiny_llama(seed), PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4))
    with torch.no_grad():  # a trained-looking prompt: far from the embedding init
        model.prompt_encoder["default"].embedding.weight.normal_(0, 1.0)
    return model.eval()


def hf_generate_one(model, prompt, max_new_tokens):
    ids = torch.tensor([prompt])
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=PAD,
    )
    return out[0, len(prompt) :].tolist()


@torch.no_grad()
def greedy_without_cache(model, prompt, max_new_tokens):
    """Reference greedy decoding: the whole sequence through the model's own forward at every
    step, no KV cache. For a PEFT model the forward prepends the soft prompt itself."""
    tokens = list(prompt)
    for _ in range(max_new_tokens):
        ids = torch.tensor([tokens])
        tokens.append(int(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1].argmax()))
    return tokens[len(prompt) :]


def ours(model, prompts, max_new_tokens=8, eos=-1):
    input_ids, mask = left_pad(prompts, PAD)
    return greedy_batch(model, input_ids, mask, eos_token_id=eos, pad_token_id=PAD, max_new_tokens=max_new_tokens)


@pytest.mark.parametrize("build", [tiny_llama, tiny_pythia], ids=["llama", "gpt_neox"])
def test_batched_greedy_equals_hf_generate_one_at_a_time(build):
    model = build()
    expected = [hf_generate_one(model, p, 8) for p in PROMPTS]
    assert ours(model, PROMPTS) == expected


@pytest.mark.filterwarnings("ignore:Position ids are not supported")
def test_batched_greedy_equals_unbatched_for_prompt_tuned_model():
    model = prompt_tuned()
    alone = [ours(model, [p])[0] for p in PROMPTS]
    assert ours(model, PROMPTS) == alone
    # and equal to re-running PEFT's own forward (which prepends the soft prompt) without a cache
    assert alone == [greedy_without_cache(model, p, 8) for p in PROMPTS]


def test_cacheless_reference_agrees_with_hf_generate_on_a_plain_model():
    model = tiny_llama()
    assert [greedy_without_cache(model, p, 8) for p in PROMPTS] == [hf_generate_one(model, p, 8) for p in PROMPTS]


def test_soft_prompt_changes_what_is_decoded():
    tuned = prompt_tuned()
    base = tuned.get_base_model()
    assert ours(tuned, PROMPTS) != ours(base, PROMPTS)


def test_batched_greedy_equals_unbatched_for_lora_model():
    model = get_peft_model(tiny_llama(), LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, target_modules="all-linear"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)  # nonzero B: the adapter changes the output
    model.eval()
    alone = [hf_generate_one(model, p, 6) for p in PROMPTS]
    assert ours(model, PROMPTS, 6) == alone
    with model.disable_adapter():
        assert ours(model, PROMPTS, 6) != alone


def test_decoding_stops_at_eos_and_drops_it():
    model = tiny_llama()
    free = ours(model, PROMPTS, 8)
    eos = free[0][2]  # pretend the third token of the first row is EOS
    stopped = ours(model, PROMPTS, 8, eos=eos)
    assert stopped[0] == free[0][:2]
    for got, full in zip(stopped, free):
        assert got == (full[: full.index(eos)] if eos in full else full)


@pytest.mark.parametrize("interval", [3, 8])
def test_checking_for_the_end_every_few_steps_decodes_the_same(monkeypatch, interval):
    import scaling_repro.evaluate.generate as generate

    model = tiny_llama()
    free = ours(model, PROMPTS, 12)
    eos = free[0][1]
    every_step = ours(model, PROMPTS, 12, eos=eos)
    monkeypatch.setattr(generate, "stop_check_interval", lambda device: interval)
    assert ours(model, PROMPTS, 12, eos=eos) == every_step


def test_max_new_tokens_bounds_the_output():
    outputs = ours(tiny_llama(), PROMPTS, 3)
    assert [len(o) for o in outputs] == [3] * len(PROMPTS)


def test_generate_returns_prompt_order_with_small_batches():
    model = tiny_llama()
    expected = ours(model, PROMPTS, 5)
    got = greedy_generate(model, PROMPTS, eos_token_id=-1, pad_token_id=PAD, max_new_tokens=5, batch_size=2)
    assert got == expected


def test_sharded_generation_gathers_in_original_order(monkeypatch):
    """Simulate 3 processes on CPU: each decodes its share, the merge restores prompt order."""
    import scaling_repro.evaluate.generate as generate_module

    model = tiny_llama()
    expected = ours(model, PROMPTS, 4)
    shards = []
    monkeypatch.setattr(generate_module, "gather_in_order", lambda local, n, process: shards.append(local))
    for index in range(3):
        greedy_generate(
            model,
            PROMPTS,
            eos_token_id=-1,
            pad_token_id=PAD,
            max_new_tokens=4,
            batch_size=2,
            process=ProcessInfo(index, 3),
        )
    assert sorted(len(s) for s in shards) == [1, 2, 2]
    assert merge_shards(shards, len(PROMPTS)) == expected


def test_merge_shards_rejects_missing_and_repeated_items():
    with pytest.raises(ValueError, match="missing"):
        merge_shards([[(0, "a")], [(2, "c")]], 3)
    with pytest.raises(ValueError, match="repeated"):
        merge_shards([[(0, "a"), (1, "b")], [(1, "b")]], 2)
