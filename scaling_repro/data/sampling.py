"""Deterministic subsets of a training pool: ``train_examples: n`` + ``seed``.

Nesting (chosen on purpose, and tested): for one seed the subsets are *nested prefixes*:
``sample(n=100, seed=s) == sample(n=1000, seed=s)[:100]``. Each language's pool is walked in
one fixed seeded permutation, and examples are taken in that order; a larger n takes more of
the same walk. So the points of a data-scaling curve for one seed differ only by the added
data, not by a reshuffle, which lowers the noise of the fitted exponent; the paper's 3 runs per
point are 3 seeds, i.e. 3 different walks (3 different subsets at every n).

Language mix (MLSum): with several languages, position k of the subset goes to the language
furthest below its share of the *full* pool (``k * share - taken``, largest first; ties to the
first language). Every prefix, so every n, then has ``|count(lang) - n * share(lang)| < 1``:
the mix is preserved to within one example, and the prefix property above still holds.

Cleaning while walking: examples with an empty source or target are skipped, and so are
repeats of a (source, target) pair already taken (duplicates, training only). Skips are counted
and logged, and the walk simply continues, so the subset always has exactly n usable examples;
n larger than the pool is an error naming both numbers. Pools are read in chunks through
``Pool.take``, so a hub dataset of millions of rows is never turned into Python objects beyond
what the subset needs.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from scaling_repro.data.types import Example
from scaling_repro.errors import UserError

log = logging.getLogger(__name__)


class Pool(Protocol):
    """Random access to a split's raw examples (in memory, or a hub dataset on disk)."""

    def __len__(self) -> int: ...

    def take(self, indices: Sequence[int]) -> list[Example]:
        """Return the examples at ``indices``, in that order, unstripped and unchecked."""
        ...


@dataclass(frozen=True)
class ListPool:
    """A pool over an in-memory list of examples."""

    examples: Sequence[Example]

    def __len__(self) -> int:
        return len(self.examples)

    def take(self, indices: Sequence[int]) -> list[Example]:
        return [self.examples[i] for i in indices]


def language_schedule(sizes: dict, n: int) -> list:
    """Return the language of each of the first ``n`` subset positions: each position goes to
    the language with the largest deficit ``k * share - taken`` (shares from ``sizes``)."""
    total = sum(sizes.values())
    langs = [lang for lang, size in sizes.items() if size > 0]
    shares = [sizes[lang] / total for lang in langs]
    taken = [0] * len(langs)
    schedule = []
    for k in range(1, n + 1):
        best = max(range(len(langs)), key=lambda i: k * shares[i] - taken[i])
        taken[best] += 1
        schedule.append(langs[best])
    return schedule


def _walk_seed(seed: int, lang: str | None) -> np.random.SeedSequence:
    # seed & 0xFFFFFFFF keeps negative seeds usable; crc32 gives each language its own walk.
    return np.random.SeedSequence([seed & 0xFFFFFFFF, zlib.crc32((lang or "").encode())])


@dataclass
class _Walk:
    """Takes usable examples from one pool in a seeded permutation, chunk by chunk."""

    pool: Pool
    order: np.ndarray
    dedupe: bool
    position: int = 0
    empty: int = 0
    duplicate: int = 0

    def __post_init__(self) -> None:
        self.buffer: list[Example] = []
        self.seen: set[tuple[str, str]] = set()

    def next_usable(self) -> Example | None:
        while not self.buffer:
            if self.position >= len(self.order):
                return None
            chunk = self.order[self.position : self.position + max(1024, self.position // 4)]
            self.position += len(chunk)
            for example in self.pool.take(chunk.tolist()):
                source, target = example.source.strip(), example.target.strip()
                if not source or not target:
                    self.empty += 1
                elif self.dedupe and (source, target) in self.seen:
                    self.duplicate += 1
                else:
                    if self.dedupe:
                        self.seen.add((source, target))
                    self.buffer.append(Example(source, target, example.lang))
            self.buffer.reverse()  # pop() from the end keeps the walk order
        return self.buffer.pop()


def sample_examples(
    pools: dict[str | None, Pool], n: int | None, seed: int, *, field: str, pool_name: str, dedupe: bool = True
) -> list[Example]:
    """Return ``n`` usable examples (all when ``n`` is None) from ``pools`` (one per language;
    a single ``None`` key for one-language tasks), in subset order; see the module docstring
    for nesting, the language mix and what is skipped. ``field`` (the recipe field that set
    ``n``) and ``pool_name`` (e.g. 'mlsum train') name the request in messages."""
    sizes = {lang: len(pool) for lang, pool in pools.items()}
    total = sum(sizes.values())
    if n is not None and n > total:
        raise UserError(f"{field}={n} is larger than the {total} examples of {pool_name}")
    walks = {
        lang: _Walk(pool, np.random.default_rng(_walk_seed(seed, lang)).permutation(len(pool)), dedupe)
        for lang, pool in pools.items()
    }
    subset: list[Example] = []
    if n is None:
        for walk in walks.values():
            while (example := walk.next_usable()) is not None:
                subset.append(example)
    else:
        keys = list(pools)
        schedule = language_schedule(sizes, n) if len(keys) > 1 else [keys[0]] * n
        for key in schedule:
            example = walks[key].next_usable()
            if example is None:
                walk = walks[key]
                label = f" for language {key!r}" if len(keys) > 1 else ""
                raise UserError(
                    f"{field}={n} needs more examples{label} than the {len(walk.pool)} of {pool_name} "
                    f"({walk.empty} empty and {walk.duplicate} duplicate ones skipped); lower it"
                )
            subset.append(example)
    empty = sum(w.empty for w in walks.values())
    duplicate = sum(w.duplicate for w in walks.values())
    if empty or duplicate:
        log.warning(
            "%s: skipped %d examples with an empty source or target and %d duplicate pairs while sampling",
            pool_name,
            empty,
            duplicate,
        )
    if not subset:
        raise UserError(f"{pool_name}: none of the {total} examples has both a source and a target")
    return subset
