"""Run order: cheapest runs first, so that a partial sweep already gives fittable points.

The cost of a run is estimated from its spec alone, without loading anything:

    cost = model parameters x training examples processed x (3 for FMT, 2 for Prompt/LoRA)

- model parameters: read from the model name: a size like ``1b``, ``410m``, ``1.4B`` or ``70k``
  (``paper-16b``, ``EleutherAI/pythia-410m``); for the tiny ladder the size word after the last
  dash (``xxs < xs < s < m < l < xl < xxl``, each 4x the previous, relative to 1M). A name with
  neither counts as 1B (unknown: assume expensive). Pretraining checkpoints of one model
  (``model.revision``) cost the same.
- examples processed: the step budget times the batch, ``min(max_steps x batch,
  max_epochs x train_examples)`` and at least ``min_steps x batch``; ``train_examples: null``
  (all data) uses the step cap. Sequence length is a property of the task and the same for
  every run of a sweep, so it is left out.
- 3 vs 2: a training step is one forward and two backward matmuls per weight for FMT; PET
  methods skip the weight gradients of the frozen model (the small trained part is ignored).

Only the ranking matters; ties keep recipe order.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Literal

from scaling_repro.config.recipe import RunSpec

Order = Literal["cheapest", "recipe"]
ORDERS: tuple[str, ...] = ("cheapest", "recipe")

_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([kmbt])(?![a-z])", re.IGNORECASE)
_UNIT = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
_LADDER = ("xxs", "xs", "s", "m", "l", "xl", "xxl")
UNKNOWN_MODEL_PARAMS = 1e9


@functools.cache  # a sweep has few model names and status estimates every run
def model_params_from_name(name: str) -> float:
    """Return the parameter count suggested by a model name (see the module docstring)."""
    last = name.rstrip("/").split("/")[-1].lower()
    sizes = _SIZE.findall(last)
    if sizes:
        number, unit = sizes[-1]
        return float(number) * _UNIT[unit.lower()]
    word = last.rsplit("-", 1)[-1]
    if word in _LADDER:
        return 1e6 * 4.0 ** (_LADDER.index(word) - _LADDER.index("s"))
    return UNKNOWN_MODEL_PARAMS


def examples_processed(spec: RunSpec) -> float:
    """Return the training examples a run will process at most (its step budget x batch)."""
    batch = spec.method.batch_size
    by_steps = spec.train.max_steps * batch
    if spec.task.train_examples is not None:
        by_steps = min(by_steps, spec.train.max_epochs * spec.task.train_examples)
    return max(by_steps, spec.train.min_steps * batch, 1)


def estimate_cost(spec: RunSpec) -> float:
    """Return the relative compute cost of a run (parameters x examples x pass factor)."""
    factor = 3.0 if spec.method.kind == "full" else 2.0
    return model_params_from_name(spec.model.name) * examples_processed(spec) * factor


def order_runs(specs: Iterable[RunSpec], order: Order = "cheapest") -> list[RunSpec]:
    """Return the runs cheapest first (ties in recipe order), or in recipe order."""
    specs = sorted(specs, key=lambda s: s.index)
    if order == "recipe":
        return specs
    if order != "cheapest":
        raise ValueError(f"unknown order {order!r}; allowed: {', '.join(ORDERS)}")
    return sorted(specs, key=estimate_cost)  # stable: ties stay in recipe order
