"""Names of the tasks a recipe may use (torch-free, so recipe validation stays light)."""

from __future__ import annotations

TASK_NAMES: tuple[str, ...] = (
    "wmt14_en_de",
    "wmt19_en_zh",
    "mlsum",
    "flores200",
    "local",
    "synthetic_mt",
)
