"""Optimizer and learning-rate schedule of a run.

Paper (Zhang et al. 2024, Sec. 2): Adafactor with a fixed learning rate per method (no
relative step, no parameter scaling) and a cosine decay. AdamW is the alternative a recipe
may choose (``train.optimizer: adamw``); it trains the tiny pretraining ladder better than
Adafactor (measured, docs/tiny_study_history.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers.optimization import (
    Adafactor,
    get_constant_schedule_with_warmup,
    get_cosine_with_min_lr_schedule_with_warmup,
)

from scaling_repro.errors import UserError


def build_optimizer(
    params: Iterable[torch.nn.Parameter],
    kind: Literal["adafactor", "adamw"],
    lr: float,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """Return the optimizer over ``params`` (only those that require grad are passed).

    Adafactor uses the paper's fixed-LR settings: ``scale_parameter=False,
    relative_step=False, warmup_init=False``, so the LR is exactly the recipe's (and the
    schedule's multiplier of it).
    """
    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise UserError("the model has no trainable parameters (method wrapping froze everything)")
    if kind == "adafactor":
        return Adafactor(
            trainable,
            lr=lr,
            weight_decay=weight_decay,
            scale_parameter=False,
            relative_step=False,
            warmup_init=False,
        )
    if kind == "adamw":
        return torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)
    raise UserError(f"train.optimizer: got {kind!r}; allowed: adafactor, adamw")


def build_schedule(
    optimizer: torch.optim.Optimizer,
    kind: Literal["cosine", "constant"],
    total_steps: int,
    warmup_steps: int = 0,
    min_lr_ratio: float = 0.0,
) -> LambdaLR:
    """Return the LR schedule: linear warmup, then cosine decay to ``min_lr_ratio * lr`` at
    ``total_steps`` (``cosine``) or the constant LR (``constant``). Step it once per
    optimizer step."""
    if kind == "constant":
        return get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup_steps)
    if kind == "cosine":
        return get_cosine_with_min_lr_schedule_with_warmup(
            optimizer,
            num_warmup_steps=warmup_steps,
            num_training_steps=max(total_steps, warmup_steps + 1),
            min_lr_rate=min_lr_ratio,
        )
    raise UserError(f"train.schedule: got {kind!r}; allowed: cosine, constant")
