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

from scaling_repro.launch.memory_fake_run import Shape, trace

GIB = 2**30
TRACE_DEPTHS = (2, 4)
FIXED_BYTES = {"distributed": 3 * GIB, "single": 2 * GIB}
ZERO_STATE_BYTES = 12  # per parameter over W GPUs: fp32 master, fp32 gradient partition, Adafactor's second moment
CACHE_VERSION = 3


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
    traced = {depth: trace(shape, depth) for depth in (low, high)}

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


def kv_cache_growth(shape: Shape) -> float:
    """Bytes the KV cache grows by over the new tokens after the traced first step (bf16 keys
    and values of every layer's key/value heads)."""
    from scaling_repro.models.configs import get_architecture

    arch = get_architecture(shape.model)
    return 2 * 2 * shape.generate_batch * shape.new_tokens * arch.layers * arch.kv_heads * arch.head_dim
