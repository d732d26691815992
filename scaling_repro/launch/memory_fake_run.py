"""One training step, a test-loss batch and decoding of a run's model, on fake tensors, with the
peak of the memory they hold (see :mod:`scaling_repro.launch.memory_trace`, which extends these
traces to the model's depth and adds what lives outside one process's tensors).

Under torch's ``FakeTensorMode`` tensors have shapes and dtypes but no storage; a dispatch mode
counts the bytes of every storage created and still alive, so a 16B model traces without
memory. What runs is the trainer's and the evaluator's own code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Shape:
    """What a run's peak memory depends on (one trace per distinct Shape)."""

    model: str  # a config name
    method: str  # full, prompt, lora
    pet_size: int  # prompt length or LoRA rank; 0 for full
    weights_dtype: str  # the trained module's weights: bfloat16 (DeepSpeed bf16) or the recipe's model.dtype
    zero_stage: int  # 0 without DeepSpeed
    world: int  # GPUs the ZeRO partitions are spread over
    checkpointing: bool
    micro_batch: int
    length: int  # tokens of a training sequence at the caps
    target_tokens: int  # of them, targets (logits)
    eval_batch: int  # test-loss batch (token-capped)
    generate_batch: int
    prompt_tokens: int  # a decoding prompt at the source cap
    new_tokens: int
    trains: bool = True  # False: an evaluation-only run (max_steps 0)
    optimizer: str = "adafactor"

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def trace(shape: Shape, depth: int) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Peaks (total, params, grads bytes) of a training step, a test-loss batch and decoding
    of ``shape``'s model cut to ``depth`` layers, all on fake tensors."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True):
        train = {"total": 0.0, "params": 0.0, "grads": 0.0}
        model = fake_model(shape, depth, training=True) if shape.trains else None
        if model is not None and shape.zero_stage:  # DeepSpeed moves each gradient into its buffers at once
            for param in model.parameters():
                if param.requires_grad:
                    param.register_post_accumulate_grad_hook(lambda p: setattr(p, "grad", None))
        if model is not None:
            train = peak(lambda: _train_step(model, shape), model)
        del model
        model = fake_model(shape, depth, training=False)
        with torch.no_grad():
            test_loss = peak(lambda: _test_loss(model, shape), model)
            decoding = peak(lambda: _decode(model, shape), model)
    return train, test_loss, decoding


def fake_model(shape: Shape, depth: int, training: bool):
    import torch

    from scaling_repro.config.recipe import FullMethod, LoraMethod, PromptMethod
    from scaling_repro.methods import apply_method
    from scaling_repro.models.configs import build_config, build_model, get_architecture

    config = build_config(shape.model, get_architecture(shape.model).listing_vocab_size)
    config.num_hidden_layers = depth
    model = build_model(config, device="cpu", dtype=getattr(torch, shape.weights_dtype))
    method: FullMethod | PromptMethod | LoraMethod = FullMethod()
    if shape.method == "prompt":
        method = PromptMethod(prompt_length=shape.pet_size, init="random")
    elif shape.method == "lora":
        method = LoraMethod(rank=shape.pet_size)
    from unittest import mock

    # PEFT moves each adapter (and replaced module) to its base layer's device, which a fake
    # parameter cannot be swapped for; on fake tensors everything is on the one device already.
    with mock.patch.object(torch.nn.Module, "to", lambda self, *args, **kwargs: self):
        wrapped = apply_method(model, method, seed=0).model
    if training and shape.checkpointing:
        wrapped.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    wrapped.train(training)
    return wrapped


def peak(work, model) -> dict[str, float]:
    """Run ``work`` counting the bytes of every storage created while it runs and alive at once
    (gradients included); return the peak plus the weights, and the weights."""
    import weakref

    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    held = [*model.parameters(), *model.buffers()]
    weights = float(sum(t.untyped_storage().nbytes() for t in {id(t.untyped_storage()): t for t in held}.values()))
    live = {"now": 0.0, "peak": 0.0}
    seen: set[int] = {id(t.untyped_storage()) for t in held}  # views of the weights are no new memory

    def freed(key: int, size: int) -> None:
        seen.discard(key)
        live["now"] -= size

    class Counter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for tensor in tree_leaves(out):
                if isinstance(tensor, torch.Tensor):
                    storage = tensor.untyped_storage()
                    key = id(storage)
                    if key not in seen:
                        seen.add(key)
                        size = storage.nbytes()
                        live["now"] += size
                        live["peak"] = max(live["peak"], live["now"])
                        weakref.finalize(storage, freed, key, size)
            return out

    import torch

    with Counter():
        work()
    return {"total": weights + live["peak"], "params": weights, "grads": 0.0}


def _autocast(shape: Shape):
    """bf16 autocast where the trainer uses it: over float32 (or PET) weights; DeepSpeed bf16
    runs the module in bfloat16 itself."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=shape.zero_stage == 0)


def _lm_batch(batch: int, length: int, targets: int) -> dict[str, Any]:
    """A padded batch of ``batch`` sequences of ``length`` tokens, the last ``targets`` scored."""
    import torch

    from scaling_repro.data.collate import IGNORE_INDEX

    ids = torch.zeros((batch, length), dtype=torch.long)
    labels = torch.zeros((batch, length), dtype=torch.long)
    labels[:, : length - targets] = IGNORE_INDEX
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def _train_step(model, shape: Shape) -> None:
    """The micro-batch's forward and backward and, without ZeRO (whose optimizer state is
    partitioned, counted apart), the optimizer's step over the trainable weights."""
    from scaling_repro.models.nll import supports_logits_to_keep, token_nll_sum
    from scaling_repro.train.optim import build_optimizer

    batch = _lm_batch(shape.micro_batch, shape.length, shape.target_tokens)
    keep = supports_logits_to_keep(model)
    if keep:  # what logits_to_keep() returns for these labels (it reads them: not on fake tensors)
        batch["logits_to_keep"] = shape.target_tokens + 1
    with _autocast(shape):
        loss = token_nll_sum(model, batch, keep)
    loss.backward()
    if not shape.zero_stage:
        optimizer = build_optimizer(model.parameters(), shape.optimizer, lr=1e-3)  # type: ignore[arg-type]
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)  # gradients stay allocated for the next step


def _test_loss(model, shape: Shape) -> None:
    """:func:`~scaling_repro.models.nll.target_nll_sum`'s work: the LM head on the hidden
    states of the positions that predict a target, gathered here by index (its boolean mask
    reads the labels, which fake tensors do not hold)."""
    import torch

    from scaling_repro.models.nll import output_head, summed_cross_entropy

    batch = _lm_batch(shape.eval_batch, shape.length, shape.target_tokens)
    rows, length = batch["labels"].shape
    first = shape.length - shape.target_tokens - 1 + _virtual(model)
    positions = torch.arange(first, first + shape.target_tokens)
    index = (torch.arange(rows)[:, None] * (length + _virtual(model)) + positions).flatten()

    def gather(module, args):
        hidden = args[0]
        return (hidden.reshape(-1, hidden.shape[-1]).index_select(0, index), *args[1:])

    handle = output_head(model).register_forward_pre_hook(gather)
    try:
        with _autocast(shape):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
            summed_cross_entropy(logits, torch.zeros(index.shape[0], dtype=torch.long))
    finally:
        handle.remove()


def _virtual(model) -> int:
    config = getattr(model, "active_peft_config", None)
    return config.num_virtual_tokens if config is not None and config.is_prompt_learning else 0


def _decode(model, shape: Shape) -> None:
    """Prefill of a decoding batch (the logits of its last position only) and one step with its
    KV cache, as :func:`~scaling_repro.evaluate.generate.greedy_batch` runs them."""
    import torch

    from scaling_repro.evaluate.generate import _cache_name, _decoder_and_prompt

    decoder, prompt = _decoder_and_prompt(model, shape.generate_batch)
    ids = torch.zeros((shape.generate_batch, shape.prompt_tokens), dtype=torch.long)
    inputs: dict[str, Any] = {"input_ids": ids}
    if prompt is not None:
        embeds = decoder.get_input_embeddings()(ids)
        inputs = {"inputs_embeds": torch.cat([prompt.to(embeds.dtype), embeds], dim=1)}
    width = shape.prompt_tokens + (prompt.shape[1] if prompt is not None else 0)
    mask = torch.ones((shape.generate_batch, width + 1), dtype=torch.long)
    positions = torch.arange(width)[None].expand(shape.generate_batch, -1)
    with _autocast(shape):
        prefill = {"attention_mask": mask[:, :width], "position_ids": positions, "logits_to_keep": 1}
        out = decoder(**inputs, use_cache=True, **prefill)
        token = out.logits[:, -1].argmax(dim=-1)
        cache = _cache_name(decoder)
        decoder(
            input_ids=token[:, None],
            attention_mask=mask,
            position_ids=positions[:, -1:] + 1,
            use_cache=True,
            **{cache: getattr(out, cache)},
        )
