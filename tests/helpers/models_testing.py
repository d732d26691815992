"""Helpers shared by the model and method tests: a word-level tokenizer, a tiny model of our
ladder, and tiny random models of open architectures."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    OPTConfig,
    OPTForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from scaling_repro.models.configs import build_config, build_model

SHAPE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
ARCHITECTURES = {  # name -> (model class, config from vocab size and special ids, LoRA targets)
    "gpt_neox": (
        GPTNeoXForCausalLM,
        lambda v, ids: GPTNeoXConfig(**SHAPE, intermediate_size=64, vocab_size=v, **ids),
        ["dense", "dense_4h_to_h", "dense_h_to_4h", "query_key_value"],
    ),
    "gpt2": (
        GPT2LMHeadModel,
        lambda v, ids: GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=256, vocab_size=v, **ids),
        ["c_attn", "c_fc", "c_proj"],
    ),
    "opt": (
        OPTForCausalLM,
        lambda v, ids: OPTConfig(
            **SHAPE, ffn_dim=64, max_position_embeddings=256, word_embed_proj_dim=32, vocab_size=v, **ids
        ),
        ["fc1", "fc2", "k_proj", "out_proj", "q_proj", "v_proj"],
    ),
    "llama": (
        LlamaForCausalLM,
        lambda v, ids: LlamaConfig(**SHAPE, num_key_value_heads=1, intermediate_size=64, vocab_size=v, **ids),
        ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
    ),
    "qwen2": (
        Qwen2ForCausalLM,
        lambda v, ids: Qwen2Config(**SHAPE, num_key_value_heads=2, intermediate_size=64, vocab_size=v, **ids),
        ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
    ),
}


def make_tokenizer(vocab_size: int = 64) -> PreTrainedTokenizerFast:
    """A tokenizer of ``vocab_size`` entries: <pad> <s> </s> <unk> w0 w1 ... (split on spaces)."""
    tokens = ["<pad>", "<s>", "</s>", "<unk>", *(f"w{i}" for i in range(vocab_size - 4))]
    core = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def tiny_model(name: str = "tiny-xs", vocab_size: int = 64, seed: int = 0):
    """A randomly initialized ``name`` model, reproducible from ``seed``."""
    torch.manual_seed(seed)
    return build_model(build_config(name, vocab_size))


def batch(vocab_size: int = 64, size: int = 2, length: int = 7, seed: int = 0) -> torch.Tensor:
    """Random token ids (a fixed input for forward passes)."""
    return torch.randint(4, vocab_size, (size, length), generator=torch.Generator().manual_seed(seed))
