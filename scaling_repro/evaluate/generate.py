"""Batched greedy decoding with a KV cache, left padding and EOS stopping.

Why not ``model.generate``: for a PEFT prompt-tuned model, ``PeftModelForCausalLM.generate``
places the virtual tokens before the left padding and ignores ``position_ids``, so a padded
prompt is decoded at different positions than the same prompt alone (and than in training),
and batched output differs from unbatched output. The loop here feeds the virtual tokens
(when there are any), masks the padding and sets ``position_ids = cumsum(mask) - 1``, which
makes every row of a batch compute exactly what it would compute alone. It runs the base
model's forward directly; LoRA adapters live inside the base model's modules, so LoRA needs
nothing special.

Distributed: every process decodes every ``count``-th prompt (after sorting by length, so
that batches carry little padding and processes get equal work) and the outputs are gathered
back in the original order. Every process holds the whole model: after DeepSpeed training the
pipeline evaluates a fresh, unpartitioned copy of the best weights.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch

from scaling_repro.data.collate import left_pad
from scaling_repro.errors import UserError
from scaling_repro.evaluate.sharding import gather_in_order
from scaling_repro.ranks import ProcessInfo

STOP_CHECK_EVERY = 8
"""Decoding steps between checks whether every row has ended, on a GPU: each check waits for
the device, and a row that has ended only adds padding. On the CPU every step checks (free)."""


def stop_check_interval(device: torch.device) -> int:
    """Return the decoding steps between checks whether every row has ended (see
    :data:`STOP_CHECK_EVERY`)."""
    return STOP_CHECK_EVERY if device.type == "cuda" else 1


def _decoder_and_prompt(model: torch.nn.Module, batch_size: int) -> tuple[torch.nn.Module, torch.Tensor | None]:
    """Return the causal LM to run and, for prompt tuning, the (batch, virtual, hidden) soft prompt."""
    peft_config = getattr(model, "active_peft_config", None)
    if peft_config is None:
        return model, None
    decoder = model.get_base_model()
    if not peft_config.is_prompt_learning:
        return decoder, None  # LoRA: adapters are injected into the base model's layers
    if peft_config.peft_type == "PREFIX_TUNING":
        raise UserError("greedy decoding supports prompt tuning and LoRA adapters, not prefix tuning")
    return decoder, model.get_prompt(batch_size=batch_size)


def _accepts(module: torch.nn.Module, argument: str) -> bool:
    return argument in inspect.signature(module.forward).parameters


def _cache_name(decoder: torch.nn.Module) -> str:
    """Return the keyword (and output field) of the KV cache: ``cache`` in newer transformers,
    ``past_key_values`` before it was renamed."""
    return "cache" if _accepts(decoder, "cache") else "past_key_values"


@torch.inference_mode()
def greedy_batch(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    eos_token_id: int,
    pad_token_id: int,
    max_new_tokens: int,
) -> list[list[int]]:
    """Return the greedily decoded continuation of each left-padded row, without the EOS that
    ended it (at most ``max_new_tokens`` tokens each)."""
    decoder, prompt = _decoder_and_prompt(model, input_ids.shape[0])
    device = input_ids.device
    mask = attention_mask.long()
    inputs: dict[str, torch.Tensor] = {"input_ids": input_ids}
    if prompt is not None:
        embeds = decoder.get_input_embeddings()(input_ids)
        inputs = {"inputs_embeds": torch.cat([prompt.to(embeds.dtype), embeds], dim=1)}
        mask = torch.cat([torch.ones(prompt.shape[:2], dtype=torch.long, device=device), mask], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    prompt_width = mask.shape[1]
    mask = torch.cat([mask, torch.ones((mask.shape[0], max_new_tokens), dtype=mask.dtype, device=device)], dim=1)
    keep_last = {"logits_to_keep": 1} if _accepts(decoder, "logits_to_keep") else {}
    cache = _cache_name(decoder)
    out = decoder(**inputs, attention_mask=mask[:, :prompt_width], position_ids=positions, use_cache=True, **keep_last)
    next_position = positions[:, -1:] + 1
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=device)
    check_every = stop_check_interval(device)
    steps: list[torch.Tensor] = []
    for step in range(max_new_tokens):
        token = out.logits[:, -1].argmax(dim=-1)
        token = torch.where(finished, torch.full_like(token, pad_token_id), token)
        steps.append(token)
        finished |= token == eos_token_id
        if step == max_new_tokens - 1 or ((step + 1) % check_every == 0 and bool(finished.all())):
            break
        out = decoder(
            input_ids=token[:, None],
            attention_mask=mask[:, : prompt_width + step + 1],
            position_ids=next_position,
            use_cache=True,
            **{cache: getattr(out, cache)},
        )
        next_position = next_position + 1
    if not steps:
        return [[] for _ in range(input_ids.shape[0])]
    return [_until_eos(row, eos_token_id) for row in torch.stack(steps, dim=1).tolist()]


def _until_eos(tokens: list[int], eos_token_id: int) -> list[int]:
    return tokens[: tokens.index(eos_token_id)] if eos_token_id in tokens else tokens


def greedy_generate(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    *,
    eos_token_id: int,
    pad_token_id: int,
    max_new_tokens: int,
    batch_size: int,
    process: ProcessInfo = ProcessInfo(),
    progress: bool = False,
) -> list[list[int]]:
    """Return the greedy continuation (token ids, EOS dropped) of every prompt, in prompt order.

    ``model`` is the unwrapped model (``accelerator.unwrap_model``). Every process must call this
    with the same prompts; each decodes its share and all processes return the full, ordered list.
    """
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    by_length = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
    mine = by_length[process.index :: process.count]
    local: list[tuple[int, list[int]]] = []
    was_training = model.training
    model.eval()
    try:
        starts = range(0, len(mine), batch_size)
        for start in tqdm(starts, desc="generate", disable=not (progress and process.is_main), leave=False):
            indices = mine[start : start + batch_size]
            input_ids, attention_mask = left_pad([prompts[i] for i in indices], pad_token_id)
            outputs = greedy_batch(
                model,
                input_ids.to(device),
                attention_mask.to(device),
                eos_token_id=eos_token_id,
                pad_token_id=pad_token_id,
                max_new_tokens=max_new_tokens,
            )
            local.extend(zip(indices, outputs))
    finally:
        model.train(was_training)
    return gather_in_order(local, len(prompts), process)
