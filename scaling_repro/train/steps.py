"""How many optimizer steps a run takes: one planner for the trainer (the cosine schedule's
length) and the cost estimate. Torch-free."""

from __future__ import annotations

import math

from scaling_repro.errors import UserError


def planned_steps(
    num_examples: int | None, global_batch: int, max_steps: int, max_epochs: float, min_steps: int = 0
) -> int:
    """Return the number of optimizer steps of a run: ``max_steps`` or ``max_epochs`` passes
    over ``num_examples``, whichever comes first, but at least ``min_steps``.

    This is also the length of the cosine schedule, so it is known before the first step.
    ``num_examples=None`` (a training set of unknown size, e.g. "all data" before loading it)
    plans ``max_steps``.
    """
    if num_examples is not None and num_examples < 1:
        raise UserError("the training set is empty")
    steps = max_steps if num_examples is None else min(max_steps, math.ceil(max_epochs * num_examples / global_batch))
    return max(min_steps, steps)
