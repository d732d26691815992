"""Where and in which dtype a model's weights are loaded (:class:`Placement`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Placement:
    """Where and in which dtype weights are loaded: ``device`` None is the CPU; ``dtype`` None
    is the recipe's ``model.dtype``. Pretrained weights are read straight onto the device in
    that dtype (one copy, never a float32 one in host memory first)."""

    device: Any = None  # torch.device | str | None
    dtype: Any = None  # torch.dtype | None


AS_RECIPE = Placement()
"""On the CPU, in the recipe's ``model.dtype``."""


def placed(model, placement: Placement):
    """Return ``model`` moved to ``placement``'s device and cast to its dtype (where set)."""
    if placement.device is None and placement.dtype is None:
        return model
    return model.to(device=placement.device, dtype=placement.dtype)


def device_map(placement: Placement) -> dict[str, Any]:
    """Return the ``from_pretrained`` keywords that read the weights straight onto the
    placement's device (none for the CPU)."""
    if placement.device is None or str(placement.device) == "cpu":
        return {}
    return {"device_map": {"": str(placement.device)}}
