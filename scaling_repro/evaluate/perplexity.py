"""Test loss: token-level mean negative log-likelihood of the target tokens (nats), with the
same loss as training (:func:`scaling_repro.models.nll.token_nll_sum`). The paper's test PPL
is ``exp`` of the loss over the concatenation of all test sets, i.e. summed NLL over summed
token count, not a mean of per-set means.

Memory: the LM head runs only on the positions that predict a target token
(:func:`~scaling_repro.models.nll.target_nll_sum`), and batches are capped in padded tokens
(``max_batch_tokens``, :data:`EVAL_BATCH_TOKENS` unless given) as well as in examples, so a
batch of long MLSum articles is smaller than one of short sentence pairs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from scaling_repro.evaluate.sharding import gather_objects, shard_indices
from scaling_repro.models.nll import predicted_tokens, target_nll_sum
from scaling_repro.ranks import ProcessInfo

EVAL_BATCH_TOKENS = 24_576
"""Padded tokens (examples x longest input) of a test-loss batch at most: 32 sentence pairs
of 768 tokens. Activations are not kept without gradients, so what grows with the batch is a
layer's temporaries and the logits at its target tokens (see ``scaling-repro validate``'s
traced evaluation memory)."""


@dataclass(frozen=True)
class NllSum:
    """Summed NLL (nats) over ``tokens`` target tokens; ``mean`` is the token-level loss."""

    nll: float = 0.0
    tokens: int = 0

    def __add__(self, other: NllSum) -> NllSum:
        return NllSum(self.nll + other.nll, self.tokens + other.tokens)

    @property
    def mean(self) -> float:
        """Token-level mean NLL (nats); NaN when no token was scored."""
        return self.nll / self.tokens if self.tokens else math.nan

    @property
    def perplexity(self) -> float:
        """``exp(mean)``."""
        return math.exp(self.mean)


@torch.no_grad()
def batch_nll(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> NllSum:
    """Return the summed NLL and count of the target tokens of one batch; logits are computed
    at the target tokens only."""
    device = next(model.parameters()).device
    batch = {key: batch[key].to(device) for key in ("input_ids", "attention_mask", "labels")}
    return NllSum(float(target_nll_sum(model, batch)), int(predicted_tokens(batch["labels"])))


def corpus_nll(
    model: torch.nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    desc: str | None = None,
    num_batches: int | None = None,
) -> NllSum:
    """Return the summed NLL over all target tokens of ``batches`` (model put in eval mode);
    ``desc`` (and ``num_batches``) show a progress bar."""
    was_training = model.training
    model.eval()
    total = NllSum()
    try:
        for batch in tqdm(batches, desc=desc, total=num_batches, disable=desc is None, leave=False):
            total = total + batch_nll(model, batch)
    finally:
        model.train(was_training)
    return total


def token_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None) -> list[range]:
    """Return consecutive index ranges over examples sorted by length, longest first: at most
    ``batch_size`` examples each and, when ``max_batch_tokens`` is set, at most that many padded
    tokens (examples x the first, longest one), but never fewer than one example."""
    batches, start = [], 0
    while start < len(lengths):
        fit = batch_size if max_batch_tokens is None else max_batch_tokens // max(lengths[start], 1)
        end = min(len(lengths), start + max(1, min(batch_size, fit)))
        batches.append(range(start, end))
        start = end
    return batches


def losses_per_set(
    model: torch.nn.Module,
    encoded_sets: Mapping[str, Sequence],
    collate,
    batch_size: int,
    process: ProcessInfo = ProcessInfo(),
    max_batch_tokens: int | None = EVAL_BATCH_TOKENS,
) -> dict[str, NllSum]:
    """Return each test set's NLL sum, computed over all processes.

    ``encoded_sets`` maps test-set name -> encoded examples and ``collate`` turns a list of them
    into a batch. Each process scores every ``count``-th example (sorted by length, so that
    batches carry little padding) in batches of at most ``batch_size`` examples and
    ``max_batch_tokens`` padded tokens (:func:`token_batches`), and the sums are gathered, so
    every process returns the same.
    """
    local: dict[str, NllSum] = {}
    for name, examples in encoded_sets.items():
        mine = [examples[i] for i in shard_indices(len(examples), process)]
        mine.sort(key=lambda e: len(e.input_ids), reverse=True)
        spans = token_batches([len(e.input_ids) for e in mine], batch_size, max_batch_tokens)
        batches = (collate(mine[span.start : span.stop]) for span in spans)
        desc = f"test loss {name}" if process.is_main else None
        local[name] = corpus_nll(model, batches, desc, num_batches=len(spans))
    totals: dict[str, NllSum] = {name: NllSum() for name in encoded_sets}
    for part in gather_objects([local], process):
        for name, value in part[0].items():
            totals[name] = totals[name] + value
    return totals


def overall(losses: Mapping[str, NllSum]) -> NllSum:
    """Return the NLL sum over the concatenation of all sets (the paper's test loss)."""
    total = NllSum()
    for value in losses.values():
        total = total + value
    return total
