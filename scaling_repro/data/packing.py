"""Padding-free batches: several examples per row, each attending only to itself.

A padded batch of WMT-like examples (55-70 tokens, the longest of a batch 130-170) is more
than half padding. :func:`collate_packed` instead places the examples of a micro-batch into
rows no longer than its longest example (first-fit decreasing), and gives every example its
own ``position_ids`` starting at 0. How an example is kept from attending to its neighbours
depends on the attention kernel (:func:`packing_layout`):

- SDPA, eager and flex attention (``rows``): with ``position_ids`` and no ``attention_mask``,
  transformers builds a block-diagonal causal mask from the position restarts of every row.
- Flash attention (``one_row``): transformers 5 runs varlen flash attention only on a batch of
  one row (with several rows it runs plain causal attention across the packed examples). The
  micro-batch is therefore one row holding every example, with ``cu_seq_lens_q/k`` and
  ``max_length_q/k`` computed here on the CPU, which transformers passes to the varlen kernel
  (given only ``position_ids`` it derives the same boundaries on the device, in every layer).

Either way each example is computed exactly as it would be alone. The loss is unchanged:
position 0 of an unpacked sequence is never predicted, so the first label of every packed
example is set to ignored (it would otherwise be predicted from the end of the previous example
in its row). Row padding gets position ids of its own (an isolated "sequence") and ignored
labels. Which examples form a micro-batch is not changed; only where they sit inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import torch

from scaling_repro.data.collate import IGNORE_INDEX

PackingLayout = Literal["rows", "one_row"]

ROW_MASK_KERNELS = frozenset({"sdpa", "eager", "flex_attention"})
"""Attention kernels that separate the packed examples of every row by a mask built from the
position restarts (tested: tests/data/test_packing_kernels.py)."""

VARLEN_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")
"""The keys of a ``one_row`` batch that transformers passes to varlen flash attention."""


def packing_layout(attn_implementation: str | None) -> tuple[PackingLayout | None, str]:
    """Return (the layout packed batches take under the attention kernel ``attn_implementation``,
    why packing is not possible when the layout is None).

    ``rows`` for SDPA, eager and flex attention (None is transformers' default, SDPA);
    ``one_row`` for every flash attention kernel (its name contains "flash", as transformers
    itself tests); None for any other kernel, whose handling of position restarts is untested.
    """
    if attn_implementation is None or attn_implementation in ROW_MASK_KERNELS:
        return "rows", ""
    if "flash" in attn_implementation:
        return "one_row", ""
    return None, (
        f"attention kernel {attn_implementation!r} is not known to keep packed examples apart "
        f"(packing works with {sorted(ROW_MASK_KERNELS)} and flash attention)"
    )


class TokenizedExample(Protocol):
    """What packing needs of an example (e.g. :class:`~scaling_repro.data.collate.EncodedExample`)."""

    input_ids: Sequence[int]
    labels: Sequence[int]


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Return rows of example positions (into ``lengths``) whose lengths sum to at most
    ``capacity`` each: first-fit decreasing, longest first, ties in input order.

    Every example whose length exceeds ``capacity`` gets a row of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(capacity - lengths[i])
    return rows


def collate_packed(
    batch: Sequence[TokenizedExample], pad_id: int = 0, layout: PackingLayout = "rows"
) -> dict[str, torch.Tensor | int]:
    """Return the examples of ``batch`` packed: ``input_ids``, ``position_ids`` and ``labels``
    of shape (rows, width), no ``attention_mask`` (the position restarts separate the examples).

    ``rows``: rows no longer than the longest example. ``one_row``: a single row of every
    example in order (no padding), plus :data:`VARLEN_KEYS`: the int32 cumulative example
    lengths and the longest example's length, as varlen flash attention takes them.
    """
    if layout == "one_row":
        return _collate_one_row(batch)
    lengths = [len(e.input_ids) for e in batch]
    width = max(lengths)
    rows = pack_rows(lengths, width)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    for r, members in enumerate(rows):
        start = 0
        for i in members:
            n = lengths[i]
            input_ids[r, start : start + n] = torch.tensor(batch[i].input_ids, dtype=torch.long)
            labels[r, start + 1 : start + n] = torch.tensor(batch[i].labels[1:], dtype=torch.long)
            position_ids[r, start : start + n] = torch.arange(n)
            start += n
        position_ids[r, start:] = torch.arange(width - start)  # padding: a sequence of its own
    return {"input_ids": input_ids, "position_ids": position_ids, "labels": labels}


def _collate_one_row(batch: Sequence[TokenizedExample]) -> dict[str, torch.Tensor | int]:
    lengths = [len(e.input_ids) for e in batch]
    input_ids = torch.tensor([t for e in batch for t in e.input_ids], dtype=torch.long)
    labels = torch.tensor([t for e in batch for t in (IGNORE_INDEX, *e.labels[1:])], dtype=torch.long)
    position_ids = torch.cat([torch.arange(n) for n in lengths])
    bounds = torch.tensor([0, *lengths], dtype=torch.int32).cumsum(0, dtype=torch.int32)
    longest = max(lengths)
    return {
        "input_ids": input_ids[None],
        "position_ids": position_ids[None],
        "labels": labels[None],
        "cu_seq_lens_q": bounds,
        "cu_seq_lens_k": bounds,
        "max_length_q": longest,
        "max_length_k": longest,
    }
