"""Padding-free batches: several examples per row, each attending only to itself.

A padded batch of WMT-like examples (55-70 tokens, the longest of a batch 130-170) is more
than half padding. :func:`collate_packed` instead places the examples of a micro-batch into
rows no longer than its longest example (first-fit decreasing), and gives every example its
own ``position_ids`` starting at 0. With ``position_ids`` and no ``attention_mask``, Hugging
Face models build a block-diagonal causal mask from the position restarts (SDPA / eager) or
run varlen flash attention, so each example is computed exactly as it would be alone.

The loss is unchanged: position 0 of an unpacked sequence is never predicted, so the first
label of every packed example is set to ignored (it would otherwise be predicted from the end
of the previous example in its row). Row padding gets position ids of its own (an isolated
"sequence") and ignored labels. Which examples form a micro-batch is not changed; only where
they sit inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from scaling_repro.data.collate import IGNORE_INDEX


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


def collate_packed(batch: Sequence[TokenizedExample], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Return ``input_ids``, ``position_ids`` and ``labels`` of shape (rows, width): the
    examples of ``batch`` packed into rows no longer than the longest of them (no
    ``attention_mask``: the position restarts separate the examples)."""
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
