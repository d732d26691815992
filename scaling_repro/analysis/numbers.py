"""Number formatting and parsing for labels, tables and the command line (1B, 8K, 3.7e14)."""

from __future__ import annotations

import math
import re

from scaling_repro.errors import UserError

_SUFFIXES = (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3))
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBtT]?)\s*$")


def human(value: float | None) -> str:
    """Return a count with a K/M/B/T suffix and at most 3 significant digits: 1e9 -> '1B', 8000 -> '8K'."""
    if value is None:
        return "none"
    value = float(value)
    for suffix, scale in _SUFFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def sci(value: float | None, digits: int = 2) -> str:
    """Return a compact number: plain for 1e-3 <= |v| < 1e3, else scientific ('3.7e+14' -> '3.7e14')."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0 or 1e-3 <= abs(value) < 1e3:
        text = f"{value:.{digits + 1}g}"
        if "e" not in text:  # 999.9 rounds to '1e+03': write it as scientific below
            return text
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def parse_quantity(text: str | float, what: str) -> float:
    """Return a positive count from '1.5M', '8K', '16B', '7e9' or a number; a UserError names ``what``."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _QUANTITY.match(str(text))
        if not match:
            raise UserError(f"{what}: got {text!r}; expected a number such as 1e9, 16B, 350M, 8K or 100000")
        scale = dict(_SUFFIXES).get(match.group(2).upper(), 1.0)
        value = float(match.group(1)) * scale
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"{what}: got {text!r}; must be a number > 0")
    return value
