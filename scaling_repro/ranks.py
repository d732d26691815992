"""Distributed identity: which process this is, out of how many. A leaf: imports nothing of
this package, and torch only when a process group may exist.

Before ``torch.distributed`` is initialised the launcher's environment says it (``torchrun``
and ``accelerate launch`` set ``RANK`` and ``WORLD_SIZE``); after, the process group does.
Both agree, so every stage asks here: rank 0 writes files, every rank takes its shard.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessInfo:
    """Which process this is (``index``) out of how many (``count``)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"bad process index {self.index} of {self.count}")

    @property
    def is_main(self) -> bool:
        """True on the process that writes results."""
        return self.index == 0


def current_process() -> ProcessInfo:
    """Return this process's rank and world size: the initialised ``torch.distributed`` process
    group's, else the launcher's ``RANK`` / ``WORLD_SIZE``, else index 0 of 1."""
    dist = sys.modules.get("torch.distributed")  # never import torch just to ask
    if dist is not None and dist.is_available() and dist.is_initialized():
        return ProcessInfo(index=dist.get_rank(), count=dist.get_world_size())
    return ProcessInfo(index=int(os.environ.get("RANK", "0")), count=int(os.environ.get("WORLD_SIZE", "1")))


def is_main_process() -> bool:
    """Return True on the process that writes files (rank 0, or the only one)."""
    return current_process().is_main
