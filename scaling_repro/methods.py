"""Finetuning methods: wrap a base model for FMT, prompt tuning or LoRA (the last two via PEFT).

- ``full``: every parameter trainable; the model is returned as is.
- ``prompt``: PEFT prompt tuning, ``num_virtual_tokens = method.prompt_length`` soft-prompt
  vectors before the input; only they train. Init ``sample_vocab`` (the paper's: embeddings
  of tokens drawn uniformly from the vocabulary, PEFT's ``SAMPLE_VOCAB``), ``random``
  (PEFT's ``RANDOM``: N(0, 1)) or ``text`` (the embeddings of ``method.init_text``'s tokens,
  repeated or cut to the prompt length as PEFT's ``TEXT`` does; filled here from the
  tokenizer object because PEFT's ``TEXT`` reloads a tokenizer by name, which a tokenizer
  trained in this run does not have).
- ``lora``: PEFT LoRA, W + (alpha / rank) B A, on every linear layer of the transformer blocks
  (attention and feed-forward projections, whatever the architecture calls them: Llama's
  ``q_proj .. down_proj``, GPT-NeoX's ``query_key_value, dense, dense_h_to_4h, dense_4h_to_h``,
  GPT-2's ``Conv1D`` ``c_attn, c_proj, c_fc``; ``all-linear`` leaves out the LM head), or on
  ``method.target_modules`` when it lists module names. The adapted modules are logged and
  recorded (``adapted_modules``). ``alpha`` null = rank (scaling 1 at
  every rank, so changing the rank does not change the update's scale); dropout 0 by default.

Random inits draw from ``seed`` inside a forked RNG, so the global RNG is left as it was.
``pet_params`` (the PET-size factor of the scaling laws) is the prompt length or the rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from scaling_repro.config.recipe import METHODS
from scaling_repro.errors import UserError

if TYPE_CHECKING:
    import torch

    from scaling_repro.config.recipe import FullMethod, LoraMethod, PromptMethod

MethodKind = Literal["full", "prompt", "lora"]


@dataclass
class MethodModel:
    """A model ready to train with ``kind``: ``trainable_params`` of ``total_params`` unique
    parameters need gradients; ``pet_params`` is the prompt length or LoRA rank (None for full)."""

    model: torch.nn.Module
    kind: MethodKind
    trainable_params: int
    total_params: int
    pet_params: int | None
    adapted_modules: tuple[str, ...] = ()  # LoRA: the module names it wraps; prompt: the embedding


def apply_method(
    model: torch.nn.Module,
    method: FullMethod | PromptMethod | LoraMethod,
    seed: int,
    tokenizer=None,
) -> MethodModel:
    """Return ``model`` prepared for ``method`` (PEFT-wrapped for prompt/LoRA, in place for
    full) with its parameter counts; ``tokenizer`` is needed only for prompt init ``text``."""
    import torch

    devices = list(range(torch.cuda.device_count()))
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if method.kind == "full":
            for param in model.parameters():
                param.requires_grad_(True)
            wrapped, pet = model, None
        elif method.kind == "prompt":
            wrapped, pet = _prompt_tuning(model, method, tokenizer), method.prompt_length
        elif method.kind == "lora":
            wrapped, pet = _lora(model, method), method.rank
        else:
            raise UserError(f"method.kind {method.kind!r} is not known; allowed: {', '.join(METHODS)}")
    trainable, total = count_trainable(wrapped)
    return MethodModel(wrapped, method.kind, trainable, total, pet, adapted_modules(wrapped, method.kind))


def adapted_modules(model: torch.nn.Module, kind: MethodKind) -> tuple[str, ...]:
    """Return the names (last path component, e.g. ``query_key_value``) of the modules a
    method adapts: those LoRA wrapped, or the input embedding that prompt tuning extends."""
    if kind == "lora":
        return tuple(
            sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")})
        )
    if kind == "prompt":
        embedding = model.get_input_embeddings()
        names = [name for name, module in model.get_base_model().named_modules() if module is embedding]
        return (names[0].rsplit(".", 1)[-1],) if names else ()
    return ()


def count_trainable(model: torch.nn.Module) -> tuple[int, int]:
    """Return (parameters that require grad, all parameters), each shared tensor once."""
    from scaling_repro.models.configs import full_numel

    params = list(model.parameters())
    return sum(full_numel(p) for p in params if p.requires_grad), sum(full_numel(p) for p in params)


def _prompt_tuning(model, method: PromptMethod, tokenizer):
    from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

    init = PromptTuningInit.SAMPLE_VOCAB if method.init == "sample_vocab" else PromptTuningInit.RANDOM
    config = PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=method.prompt_length, prompt_tuning_init=init
    )
    peft_model = get_peft_model(model, config)
    if method.init == "text":
        _init_prompt_from_text(peft_model, method, tokenizer)
    return peft_model


def _init_prompt_from_text(peft_model, method: PromptMethod, tokenizer) -> None:
    """Set the soft prompt to the embeddings of ``method.init_text``'s tokens, repeated or cut
    to the prompt length (PEFT's TEXT init, from a tokenizer object)."""
    import torch

    if tokenizer is None:
        raise UserError("method.init 'text' needs the tokenizer: pass it to apply_method")
    ids = tokenizer(method.init_text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise UserError(f"method.init_text {method.init_text!r} has no tokens")
    ids = (ids * math.ceil(method.prompt_length / len(ids)))[: method.prompt_length]
    from peft.utils.integrations import gather_params_ctx

    embeddings = peft_model.get_input_embeddings()
    prompt = peft_model.prompt_encoder[peft_model.active_adapter].embedding.weight
    # Under ZeRO-3 construction the embedding is partitioned: gathered to read it, as PEFT does.
    with torch.no_grad(), gather_params_ctx(embeddings.parameters(), modifier_rank=None):
        values = embeddings(torch.tensor(ids, device=embeddings.weight.device))
        prompt.copy_(values.to(prompt.dtype))


def _has_conv1d(model) -> bool:
    from transformers.pytorch_utils import Conv1D

    return any(isinstance(module, Conv1D) for module in model.modules())


def _lora(model, method: LoraMethod):
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=method.rank,
        lora_alpha=method.alpha if method.alpha is not None else method.rank,
        lora_dropout=method.dropout,
        target_modules=method.target_modules if method.target_modules == "all-linear" else list(method.target_modules),
        bias="none",
        fan_in_fan_out=_has_conv1d(model),  # GPT-2 stores its projections transposed (Conv1D)
    )
    try:
        return get_peft_model(model, config)
    except ValueError as err:  # e.g. a listed target module that the model does not have
        raise UserError(f"method.target_modules {method.target_modules!r}: {str(err).splitlines()[0]}") from err
