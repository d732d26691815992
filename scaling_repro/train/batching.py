"""What each process trains on at each step, and the token-level loss.

The training data is one seeded stream of example indices: epoch e is a permutation of the
training set drawn with seed ``(seed, e)``; epochs follow each other without a gap, so a
global batch may straddle two epochs (and a set smaller than the batch still trains). Step s
takes stream positions ``[s*B, (s+1)*B)``, cut into micro-batches of size m; micro-batch
``j*W + r`` goes to rank r as its j-th accumulation micro-step. The step's examples therefore
depend only on (seed, step, B), never on the number of processes, and the data position of a
resume is the step number alone.

The loss of a step is the summed token NLL over the whole global batch divided by its number
of target tokens (a true token-level mean, the same on any number of devices or micro-batches).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from scaling_repro.data.packing import PackingLayout, collate_packed, packing_layout
from scaling_repro.errors import UserError
from scaling_repro.models.nll import logits_to_keep, packing_support, predicted_tokens, token_nll_sum

log = logging.getLogger("scaling_repro.train.loop")

Batch = dict[str, Any]  # tensors, and ``logits_to_keep`` as an int for a padded batch


@dataclass(frozen=True)
class Batcher:
    """Turns a list of examples into one CPU batch for :func:`token_nll_sum`: padded by the
    run's ``collate_fn``, or packed in the ``packing`` layout (:mod:`scaling_repro.data.packing`);
    with the positions to compute logits for worked out ahead on the CPU."""

    collate_fn: Callable[[list[Any]], Batch]
    packing: PackingLayout | None = None
    keep_logits: bool = False

    def __call__(self, examples: list[Any]) -> Batch:
        batch = collate_packed(examples, layout=self.packing) if self.packing else dict(self.collate_fn(examples))
        if self.keep_logits:
            batch["logits_to_keep"] = logits_to_keep(batch["labels"], self.packing is not None)
        return batch


def use_packing(
    setting: Literal["auto", "on", "off"], model: torch.nn.Module, examples: Sequence[Any]
) -> PackingLayout | None:
    """Return the layout of packed training batches (:func:`~scaling_repro.data.packing.packing_layout`
    of the model's attention kernel), or None for padded batches: ``train.packing`` ``on``, or
    ``auto`` where packing saves padding; always only where the model supports it
    (:func:`~scaling_repro.models.nll.packing_support`) and its attention kernel keeps packed
    examples apart. ``on`` where packing cannot work is a UserError; ``auto`` otherwise pads and
    logs why. ``auto`` also pads examples that all have one length (pretraining sequences cut to
    ``seq_len``): there is no padding to save."""
    if setting == "off":
        return None
    ok, reason = packing_support(model)
    layout: PackingLayout | None = None
    if ok:
        layout, reason = packing_layout(attention_kernel(model))
        ok = layout is not None
    if not ok and setting == "on":
        raise UserError(f"train.packing: on is not possible here: {reason}; set train.packing to auto or off")
    if ok and setting == "auto":
        step = max(1, len(examples) // 1024)  # a spread sample: the set may be memory-mapped
        lengths = {len(examples[i].input_ids) for i in range(0, len(examples), step)}
        if len(lengths) == 1:
            ok, reason = False, f"the examples are all {lengths.pop()} tokens long: no padding to save"
    if not ok:
        log.info("training on padded batches (train.packing %s): %s", setting, reason)
        return None
    return layout


def attention_kernel(model: torch.nn.Module) -> str | None:
    """Return the attention implementation ``model`` (or the base model under PEFT) runs, as its
    config names it (``sdpa``, ``eager``, ``flash_attention_2``, ...), or None if it has none."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(getattr(base, "config", None), "_attn_implementation", None)


class ExampleStream:
    """Seeded, endless stream of example indices over a training set of ``size`` examples."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self._cache: dict[int, list[int]] = {}

    def _epoch(self, epoch: int) -> list[int]:
        if epoch not in self._cache:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
            self._cache = {e: v for e, v in self._cache.items() if e == epoch - 1}  # keep 2 epochs
            self._cache[epoch] = order
        return self._cache[epoch]

    def take(self, start: int, count: int) -> list[int]:
        """Return stream positions ``start .. start+count-1`` as example indices."""
        out = []
        for position in range(start, start + count):
            epoch, offset = divmod(position, self.size)
            out.append(self._epoch(epoch)[offset])
        return out


def rank_micro_batches(global_batch: list[int], micro_batch_size: int, world_size: int, rank: int) -> list[list[int]]:
    """Return the micro-batches (lists of example indices) of ``rank`` for one step."""
    count = len(global_batch) // micro_batch_size
    micros = [global_batch[k * micro_batch_size : (k + 1) * micro_batch_size] for k in range(count)]
    return micros[rank::world_size]


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Return ``batch`` with its model inputs on ``device`` (copied from pinned memory without
    blocking the host on CUDA); non-tensors stay as they are."""
    pin = device.type == "cuda"
    return {
        k: (v.pin_memory() if pin else v).to(device, non_blocking=True) if torch.is_tensor(v) else v
        for k, v in batch.items()
    }


@torch.no_grad()
def dev_loss(
    model: torch.nn.Module,
    dev_set: Sequence[Any],
    batcher: Batcher,
    batch_size: int,
    accelerator,
) -> float:
    """Return the token-level mean NLL (nats) of ``model`` on ``dev_set``, over all ranks.

    Every rank runs the same number of forward passes (ZeRO-3 gathers weights collectively);
    a rank out of examples runs a zero-weighted copy of the first one.
    """
    world, rank = accelerator.num_processes, accelerator.process_index
    shard = list(range(rank, len(dev_set), world))
    per_rank = -(-len(dev_set) // world)
    n_batches = -(-per_rank // batch_size)
    was_training = model.training
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    for b in range(n_batches):
        indices = shard[b * batch_size : (b + 1) * batch_size]
        weight = 1.0 if indices else 0.0
        batch = to_device(batcher([dev_set[i] for i in indices or [0]]), accelerator.device)
        totals[0] += weight * token_nll_sum(model, batch, batcher.keep_logits).double()
        totals[1] += weight * predicted_tokens(batch["labels"]).double()
    model.train(was_training)
    totals = accelerator.reduce(totals, reduction="sum")
    if totals[1] == 0:
        raise ValueError("the dev set has no target tokens")
    return float(totals[0] / totals[1])
