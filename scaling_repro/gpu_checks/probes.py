"""Forward hooks that record what evaluation computes in: the output dtype and device of a
decoder layer's linear layer, of the LM head, and the logits the caller receives."""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch


def first_layer_linear(model: torch.nn.Module) -> tuple[str, torch.nn.Module]:
    """Return (name, module) of the first ``nn.Linear`` inside decoder layer 0 of ``model``
    (under LoRA, the wrapped base linear)."""
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and "layers.0." in f"{name}.":
            return name, module
    raise ValueError("the model has no nn.Linear in a module path containing 'layers.0.'")


class DtypeProbe:
    """Within, counts the dtypes (and devices) of the outputs of the first decoder linear,
    the LM head and ``model`` itself (its ``logits``)."""

    def __init__(self, model: torch.nn.Module) -> None:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.linear_name, linear = first_layer_linear(base)
        targets = {"linear": linear, "lm_head": base.get_output_embeddings(), "logits": model}
        self.targets = {key: module for key, module in targets.items() if module is not None}
        self.seen: dict[str, Counter[str]] = {key: Counter() for key in self.targets}
        self.devices: set[str] = set()
        self.head_rows = 0  # positions the LM head computed logits for
        self._handles: list[Any] = []

    def _hook(self, key: str):
        def record(module: torch.nn.Module, args: Any, output: Any) -> None:
            tensor = getattr(output, "logits", output) if key == "logits" else output
            if torch.is_tensor(tensor):
                self.seen[key][str(tensor.dtype).removeprefix("torch.")] += 1
                self.devices.add(tensor.device.type)
                if key == "lm_head":
                    self.head_rows += tensor.numel() // tensor.shape[-1]

        return record

    def __enter__(self) -> DtypeProbe:
        self._handles = [m.register_forward_hook(self._hook(key)) for key, m in self.targets.items()]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()

    def dtypes(self, key: str) -> str:
        """Return "dtype x calls, ..." seen for ``key`` ("linear", "lm_head", "logits")."""
        return ", ".join(f"{dtype} x{n}" for dtype, n in sorted(self.seen[key].items())) or "no calls"

    def only(self, key: str) -> set[str]:
        """Return the set of dtypes seen for ``key``."""
        return set(self.seen[key])
