"""Peak GPU memory of a run, per GPU, traced without a GPU: one training step and the
evaluation path (test loss, greedy decoding) run on fake tensors.

The model is built and run under torch's ``FakeTensorMode`` (tensors with shapes and dtypes,
no storage: a 16B trace allocates nothing) while a dispatch mode follows every tensor storage
created and freed (weights, gradients, activations, temporaries) and the peak is kept. What
runs is the trainer's and the evaluator's own code on the recipe's shapes: the model built from
its config at the listed 256K vocabulary, the method applied, the recipe's micro-batch of
sequences at the task's length cap (plus the prompt), gradient checkpointing as set, the
training loss through :func:`~scaling_repro.models.nll.token_nll_sum` (logits at target
positions), the test loss through :func:`~scaling_repro.models.nll.target_nll_sum` at the
evaluator's token-capped batch, and decoding's prefill and a step with its KV cache.

Two parts are counted, not traced, because they live in other processes' memory or in
DeepSpeed's buffers: the ZeRO partitions (fp32 master weights, fp32 gradient partition and
Adafactor's unfactored second moment under ZeRO, 12 bytes per parameter over the W GPUs;
ZeRO-2 keeps the bf16 gradients whole, ZeRO-3 partitions them and the bf16 weights and gathers
about two layers and the embedding at a time; the trace drops each gradient as it is made, as
DeepSpeed moves it into its buffers), DDP's gradient buckets (a copy of the gradients over
several GPUs), and a fixed allowance for the CUDA context, NCCL and DeepSpeed's buffers (3 GB
over several GPUs, 2 GB on one; evaluation: 2 GB). Without ZeRO the optimizer's step is
traced too. Depth: the trace runs the model at 2 and 4 of its identical layers
and extends the peak linearly to all of them (a 16B trace at full depth takes a minute).

Results are cached per distinct shape, in memory and in ``~/.cache/scaling_repro/`` (keyed by
the torch and transformers versions), so ``validate`` of a grid traces each shape once.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

GIB = 2**30
TRACE_DEPTHS = (2, 4)
FIXED_BYTES = {"distributed": 3 * GIB, "single": 2 * GIB}
ZERO_STATE_BYTES = 12  # per parameter over W GPUs: fp32 master, fp32 gradient partition, Adafactor's second moment
CACHE_VERSION = 3


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


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes per GPU of training (None: the run does not train) and of evaluation (the
    larger of test loss and decoding)."""

    train_bytes: float | None
    eval_bytes: float

    @property
    def train_gb(self) -> float | None:
        return None if self.train_bytes is None else self.train_bytes / 1e9

    @property
    def eval_gb(self) -> float:
        return self.eval_bytes / 1e9


def run_shape(spec) -> Shape | None:
    """Return the memory Shape of a RunSpec, or None when its model is not a config name (a
    hub model's architecture is not known without downloading it)."""
    from scaling_repro.evaluate.perplexity import EVAL_BATCH_TOKENS
    from scaling_repro.launch.cost import task_length_caps
    from scaling_repro.models.configs import is_config_name
    from scaling_repro.train.distributed import load_deepspeed_config

    if not is_config_name(spec.model.name):
        return None
    source_cap, target_cap = task_length_caps(spec.task.name)
    source = spec.task.max_source_tokens or source_cap
    target = spec.task.max_target_tokens or target_cap
    kind = spec.method.kind
    virtual = spec.method.prompt_length if kind == "prompt" else 0
    stage = 0
    if spec.train.deepspeed:
        stage = int(load_deepspeed_config(spec.train.deepspeed).get("zero_optimization", {}).get("stage", 0))
    dtype = "bfloat16" if stage else ("float32" if spec.model.dtype == "auto" else spec.model.dtype)
    length = source + target
    world = max(1, spec.launch.gpus_per_node) * spec.launch.nodes
    eval_batch = max(1, min(spec.eval.batch_size, EVAL_BATCH_TOKENS // length))
    return Shape(
        model=spec.model.name,
        method=kind,
        pet_size=virtual or (spec.method.rank if kind == "lora" else 0),
        weights_dtype=dtype,
        zero_stage=stage,
        world=world,
        checkpointing=spec.train.gradient_checkpointing,
        micro_batch=spec.train.micro_batch_size or spec.method.batch_size,
        length=length,
        target_tokens=target,
        eval_batch=eval_batch,
        generate_batch=spec.eval.generate_batch_size or spec.eval.batch_size,
        prompt_tokens=source,
        new_tokens=spec.eval.max_new_tokens or target,
        trains=spec.train.max_steps > 0,
        optimizer=spec.train.optimizer,
    )


def run_memory(spec) -> MemoryEstimate | None:
    """Return the traced peak memory per GPU of a RunSpec (see the module docstring), or None
    for a model that is not a config name."""
    shape = run_shape(spec)
    return None if shape is None else shape_memory(shape)


@functools.cache
def shape_memory(shape: Shape) -> MemoryEstimate:
    """Return the peak memory per GPU of ``shape``, from the disk cache or traced."""
    cache = _cache_file()
    stored = _read_cache(cache)
    if shape.key() in stored:
        return MemoryEstimate(**stored[shape.key()])
    estimate = trace_shape(shape)
    stored = _read_cache(cache)
    stored[shape.key()] = asdict(estimate)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(stored, indent=0, sort_keys=True))
        tmp.replace(cache)
    except OSError:
        pass  # a cache that cannot be written: traced again next time
    return estimate


def _cache_file() -> Path:
    import torch
    import transformers

    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scaling_repro"
    return root / f"memory_trace-v{CACHE_VERSION}-torch{torch.__version__}-tf{transformers.__version__}.json"


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def trace_shape(shape: Shape) -> MemoryEstimate:
    """Trace ``shape`` at :data:`TRACE_DEPTHS` layers, extend to the model's depth, and add the
    ZeRO partitions and the fixed allowance; return the per-GPU peaks."""
    from scaling_repro.models.configs import get_architecture

    layers = get_architecture(shape.model).layers
    low, high = TRACE_DEPTHS
    traced = {depth: _trace(shape, depth) for depth in (low, high)}

    def extend(index: int) -> dict[str, float]:
        a, b = traced[low][index], traced[high][index]
        return {k: a[k] + (b[k] - a[k]) * (layers - low) / (high - low) for k in a}

    train, test_loss, decoding = extend(0), extend(1), extend(2)
    n = _parameters(shape.model)
    fixed = FIXED_BYTES["distributed" if shape.zero_stage or shape.world > 1 else "single"]
    train_bytes = train["total"] + fixed
    if shape.zero_stage:  # optimizer partitions, and the bf16 gradients (dropped in the trace)
        train_bytes += ZERO_STATE_BYTES * n / shape.world + (2 * n if shape.zero_stage == 2 else 2 * n / shape.world)
    if not shape.zero_stage and shape.world > 1:  # DDP's gradient buckets: a copy of the gradients
        train_bytes += _trainable_bytes(shape)
    if shape.zero_stage == 3:  # weights partitioned; a working set gathered
        train_bytes += -train["params"] + 2 * n / shape.world + _zero3_gathered(shape.model)
    eval_bytes = max(test_loss["total"], decoding["total"] + kv_cache_growth(shape)) + FIXED_BYTES["single"]
    return MemoryEstimate(train_bytes=train_bytes if shape.trains else None, eval_bytes=eval_bytes)


def _trainable_bytes(shape: Shape) -> float:
    """Bytes of the trainable weights (all of them for FMT; a PET method's are negligible)."""
    import torch

    if shape.method != "full":
        return 0.0
    return float(_parameters(shape.model) * getattr(torch, shape.weights_dtype).itemsize)


def _parameters(model: str) -> int:
    from scaling_repro.models.configs import architecture_counts

    return architecture_counts(model).total


def _zero3_gathered(model: str) -> float:
    """bf16 bytes ZeRO-3 holds gathered at once: about two layers and the tied embedding."""
    from scaling_repro.models.configs import architecture_counts, get_architecture

    arch = get_architecture(model)
    embedding = arch.listing_vocab_size * arch.model_dim
    per_layer = (architecture_counts(model).total - embedding) / arch.layers
    return 2 * (2 * per_layer + embedding)


def _trace(shape: Shape, depth: int) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Peaks (total, params, grads bytes) of a training step, a test-loss batch and decoding
    of ``shape``'s model cut to ``depth`` layers, all on fake tensors."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True):
        train = {"total": 0.0, "params": 0.0, "grads": 0.0}
        model = _fake_model(shape, depth, training=True) if shape.trains else None
        if model is not None and shape.zero_stage:  # DeepSpeed moves each gradient into its buffers at once
            for param in model.parameters():
                if param.requires_grad:
                    param.register_post_accumulate_grad_hook(lambda p: setattr(p, "grad", None))
        if model is not None:
            train = _peak(lambda: _train_step(model, shape), model)
        del model
        model = _fake_model(shape, depth, training=False)
        with torch.no_grad():
            test_loss = _peak(lambda: _test_loss(model, shape), model)
            decoding = _peak(lambda: _decode(model, shape), model)
    return train, test_loss, decoding


def _fake_model(shape: Shape, depth: int, training: bool):
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


def _peak(work, model) -> dict[str, float]:
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


def kv_cache_growth(shape: Shape) -> float:
    """Bytes the KV cache grows by over the new tokens after the traced first step (bf16 keys
    and values of every layer's key/value heads)."""
    from scaling_repro.models.configs import get_architecture

    arch = get_architecture(shape.model)
    return 2 * 2 * shape.generate_batch * shape.new_tokens * arch.layers * arch.kv_heads * arch.head_dim
