"""Helpers shared by the model and method tests: a word-level tokenizer and a tiny model."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from scaling_repro.models.configs import build_config, build_model


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
