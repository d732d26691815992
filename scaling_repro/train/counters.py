"""Step statistics: token counts on the host, losses on the device until they are needed.

Reading a loss off a GPU (``.item()``, ``.tolist()``) makes the host wait for every queued
kernel, so a step that reads its own loss leaves the GPU idle while the next step is set up.
The token counts of a step need no device at all: every process knows the global batch's
example indices, and :class:`ExampleSizes` counts those examples' tokens once. The losses are
added up on the device (:class:`PendingLoss`) and read back in one reduction at log,
evaluation and checkpoint steps; a non-finite loss is noted on the device at the step it
happens and reported at the next read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from scaling_repro.data.collate import IGNORE_INDEX

NO_STEP = 2**62


@dataclass(frozen=True)
class StepCounts:
    """What one optimizer step trains on, over all processes."""

    tokens: int  # input tokens without padding
    squared_lengths: int  # sum of squared sequence lengths (the attention FLOPs)
    target_tokens: int  # labels the loss is on (position 0 is never predicted)
    examples: int


class ExampleSizes:
    """Token and target counts of each example of a training set (examples with
    ``input_ids`` and ``labels``), counted the first time the example is drawn."""

    def __init__(self, examples: Sequence[Any]) -> None:
        self.examples = examples
        self.tokens = torch.full((len(examples),), -1, dtype=torch.int32)
        self.targets = torch.full((len(examples),), -1, dtype=torch.int32)

    def counts(self, indices: Sequence[int]) -> StepCounts:
        """Return the StepCounts of the examples at ``indices`` (a global batch)."""
        for i in indices:
            if self.tokens[i] < 0:
                example = self.examples[i]
                self.tokens[i] = len(example.input_ids)
                self.targets[i] = sum(1 for label in example.labels[1:] if label != IGNORE_INDEX)
        index = torch.as_tensor(list(indices), dtype=torch.long)
        lengths = self.tokens[index].long()
        return StepCounts(
            tokens=int(lengths.sum()),
            squared_lengths=int((lengths**2).sum()),
            target_tokens=int(self.targets[index].sum()),
            examples=len(index),
        )


@dataclass(frozen=True)
class ReadLoss:
    """The losses of the steps since the last read, summed over all processes."""

    steps: int
    loss_sum: float  # sum over steps of each step's token-level mean loss
    first_non_finite_step: int | None


class PendingLoss:
    """Step losses since the last read, kept on the device."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._reset()

    def _reset(self) -> None:
        self.steps = 0
        self.loss = torch.zeros((), dtype=torch.float64, device=self.device)
        self.first_bad = torch.full((), NO_STEP, dtype=torch.long, device=self.device)

    def add(self, step: int, loss: torch.Tensor) -> None:
        """Add step ``step``'s loss (this process's share, a device scalar)."""
        self.steps += 1
        loss = loss.detach()
        self.loss += loss.double()
        self.first_bad = torch.where(torch.isfinite(loss), self.first_bad, torch.clamp(self.first_bad, max=step))

    def read(self, accelerator) -> ReadLoss:
        """Return the losses since the last read summed over all processes (one reduction, one
        wait for the device) and start afresh."""
        loss, first_bad = self.loss.clone(), self.first_bad.clone()
        if accelerator.num_processes > 1:
            loss = accelerator.reduce(loss, reduction="sum")
            torch.distributed.all_reduce(first_bad, op=torch.distributed.ReduceOp.MIN)
        bad = int(first_bad)
        read = ReadLoss(self.steps, float(loss), None if bad == NO_STEP else bad)
        self._reset()
        return read
