"""Splitting evaluation work over processes and putting the results back in order.

Every process of a distributed run (``accelerate launch``/``torchrun``) takes every
``count``-th item starting at its own ``index``; the per-process results are gathered to
every process and reassembled in the original order. Single-process runs never touch
``torch.distributed``. The pure functions here (:func:`shard_indices`, :func:`merge_shards`)
are what the tests exercise on CPU without a process group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from scaling_repro.ranks import ProcessInfo

T = TypeVar("T")


def shard_indices(n: int, process: ProcessInfo) -> list[int]:
    """Return the indices of ``n`` items this process handles: ``index, index+count, ...``
    (strided, so that length-sorted work is spread evenly over processes)."""
    return list(range(process.index, n, process.count))


def merge_shards(shards: Sequence[Sequence[tuple[int, T]]], n: int) -> list[T]:
    """Return the items of all processes' ``(original index, item)`` lists in original order.

    Raises ValueError when an index is missing, repeated or out of range, so that a lost or
    duplicated shard cannot silently shift predictions against their references.
    """
    ordered: list[Any] = [None] * n
    seen = [False] * n
    for shard in shards:
        for index, item in shard:
            if not 0 <= index < n or seen[index]:
                raise ValueError(f"index {index} is out of range or repeated across shards (n={n})")
            seen[index] = True
            ordered[index] = item
    if not all(seen):
        missing = [i for i, ok in enumerate(seen) if not ok]
        raise ValueError(f"{len(missing)} of {n} items missing after gathering, e.g. {missing[:5]}")
    return ordered


def gather_objects(local: list[Any], process: ProcessInfo) -> list[list[Any]]:
    """Return every process's ``local`` list (index = process), gathered to all processes."""
    if process.count == 1:
        return [local]
    import torch.distributed as dist

    gathered: list[Any] = [None] * process.count
    dist.all_gather_object(gathered, local)
    return gathered


def gather_in_order(local: list[tuple[int, T]], n: int, process: ProcessInfo) -> list[T]:
    """Gather ``(original index, item)`` pairs from all processes and return the ``n`` items
    in original order (see :func:`merge_shards`)."""
    return merge_shards(gather_objects(local, process), n)
