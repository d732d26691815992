"""Tiny models and data for the trainer tests (no hub, seconds on one CPU thread)."""

from __future__ import annotations

import functools
import random

import torch

from scaling_repro.data.collate import EncodedExample, collate_for_lm

VOCAB = 64
PAD, BOS, SEP, EOS = 0, 1, 2, 3


def copy_task(n: int, seed: int, min_len: int = 3, max_len: int = 8, top: int = 12) -> list[EncodedExample]:
    """``bos a.. sep a.. eos`` with tokens a in [4, top): the target repeats the prompt; loss on
    the target. A narrow token range gives every method (even a prompt) something to learn."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        body = [rng.randrange(4, top) for _ in range(rng.randint(min_len, max_len))]
        prompt = [BOS, *body, SEP]
        target = [*body, EOS]
        out.append(EncodedExample(prompt + target, [-100] * len(prompt) + target, len(prompt)))
    return out


# The data stage's collate: right-pads input_ids with PAD and labels with -100.
collate = functools.partial(collate_for_lm, pad_id=PAD)


def tiny_llama(seed: int = 0, hidden: int = 32, layers: int = 2):
    """A 2-layer multi-query Llama with a 64-token vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=1,
        intermediate_size=2 * hidden,
        vocab_size=VOCAB,
        max_position_embeddings=64,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def wrap(model, kind: str, seed: int = 0, dropout: float = 0.0):
    """Wrap for a method with PEFT directly: full | prompt | lora (with ``dropout``)."""
    if kind == "full":
        return model
    from peft import LoraConfig, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

    torch.manual_seed(seed)
    if kind == "prompt":
        config = PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4, prompt_tuning_init=PromptTuningInit.RANDOM
        )
    else:
        config = LoraConfig(
            task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=4, lora_dropout=dropout, target_modules="all-linear"
        )
    return get_peft_model(model, config)


def train_config(**overrides):
    from scaling_repro.config.recipe import TrainConfig

    base = dict(max_steps=8, max_epochs=100, eval_every=4, log_every=1, grad_clip=1.0, seed=0)
    base.update(overrides)
    return TrainConfig(**base)
