"""The one base of every configuration schema: recipes, pretraining recipes and study plans."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict


class ConfigSection(BaseModel):
    """Base of every section of a configuration file: unknown keys and non-finite numbers
    (inf, nan) are errors, defaults are validated, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


def int_like(value: Any) -> Any:
    """Accept 8.4e10, '8.4e10' and '84_000' for integer counts; YAML 1.1 reads '1e6' as a string.
    Return anything else unchanged, for the field's own validation to judge."""
    if isinstance(value, str):
        try:
            value = float(value.replace("_", ""))
        except ValueError:
            return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value
