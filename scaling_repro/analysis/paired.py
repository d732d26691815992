"""Comparisons of fitted quantities judged on paired bootstrap replicates.

A finding such as "beta_FMT > beta_Prompt" is a statement about a difference, so it is judged on
the distribution of the difference over bootstrap replicates, not on whether two separate
intervals overlap (two non-overlapping 90% intervals is a much stricter test than a 90% test of
the difference). Replicate ``i`` of one fit is paired with replicate ``i`` of the other:

- within one method's joint fit (alpha_m vs alpha_p, alpha vs beta) the replicates are the same
  resamples of the data, so the pairing carries the correlation of the two estimates;
- across methods the data are independent and each method is bootstrapped with its own seed,
  so pairing by index draws from the joint distribution of two independent estimates.

``a > b`` is decided when ``a_i > b_i`` in at least ``(1 + level) / 2`` of the replicates (e.g.
95% for a 90% level): the lower end of the central ``level`` interval of the paired difference
lies above zero. Infinite values (e.g. "no crossing") compare as such.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from scaling_repro.fit import LawFit

Order = Literal["greater", "less", "undecided"]


def replicates(fit: LawFit | None, param: str) -> np.ndarray | None:
    """Return the bootstrap replicates of ``fit.params[param]`` (None without a bootstrap)."""
    if fit is None or fit.bootstrap is None or not fit.bootstrap.samples:
        return None
    return np.array([s[param] for s in fit.bootstrap.samples], float)


def paired(a: np.ndarray | None, b: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the two replicate arrays cut to a common length, or None when either is missing."""
    if a is None or b is None:
        return None
    n = min(len(a), len(b))
    return (a[:n], b[:n]) if n else None


def decide(a: np.ndarray | None, b: np.ndarray | None, level: float) -> Order:
    """Return 'greater' when a > b in at least (1 + level) / 2 of the paired replicates, 'less'
    when a < b as often, else 'undecided' (also without replicates)."""
    pair = paired(a, b)
    if pair is None:
        return "undecided"
    x, y = pair
    need = (1.0 + level) / 2.0
    if np.mean(x > y) >= need:
        return "greater"
    if np.mean(x < y) >= need:
        return "less"
    return "undecided"


def interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """Return the central ``level`` percentile interval of one quantity's replicates."""
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def difference_interval(a: np.ndarray | None, b: np.ndarray | None, level: float) -> tuple[float, float] | None:
    """Return the central ``level`` percentile interval of the paired difference a - b (None
    without replicates or where a difference is not finite)."""
    pair = paired(a, b)
    if pair is None:
        return None
    with np.errstate(invalid="ignore"):
        diff = pair[0] - pair[1]
    if not np.all(np.isfinite(diff)):
        return None
    return interval(diff, level)


def describe(name: str, value: float, a: np.ndarray | None, b: np.ndarray | None, level: float) -> str:
    """Return 'name = value, level interval of the paired difference [low, high] over n replicates'."""
    interval = difference_interval(a, b, level)
    pair = paired(a, b)
    if interval is None or pair is None:  # pair is None only where interval is
        return f"{name} = {value:+.4g} (no bootstrap replicates)"
    n = len(pair[0])
    low, high = interval
    return (
        f"{name} = {value:+.4g}, {level:.0%} interval of the paired difference "
        f"[{low:+.4g}, {high:+.4g}] ({n} replicates)"
    )
