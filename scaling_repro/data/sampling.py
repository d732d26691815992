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

Cleaning while walking: examples with an empty source or target are always skipped; with
``dedupe`` so are repeats of a (source, target) pair already taken (compared by a 64-bit
BLAKE2b hash of the stripped pair: 8 bytes per pair seen, and a false match needs 2**32 pairs
to become likely). Skips are counted and logged and the walk continues, so the subset has
exactly n usable examples. The paper counts raw pairs, so its tasks default to ``dedupe`` off
(:mod:`scaling_repro.data.tasks`). A request beyond the pool is an error naming the pool size
and the options, or with ``whole_pool`` the whole usable pool with a warning.

Pools are read in chunks of at most :data:`MAX_CHUNK_ROWS` rows through ``Pool.take``, so a
hub dataset of millions of rows is never turned into Python objects beyond one chunk; the
sampler's result is the subset's row numbers (:class:`SampledRows`), 9 bytes per example.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from scaling_repro.data.types import Example, add_to_digest
from scaling_repro.errors import UserError

log = logging.getLogger(__name__)

MAX_CHUNK_ROWS = 1 << 16
"""Most rows one read of a pool takes (chunks grow from 1024 with the walk up to this)."""


class Pool(Protocol):
    """Random access to a split's raw examples (in memory, or a dataset on disk)."""

    def __len__(self) -> int: ...

    def take(self, indices: Sequence[int]) -> list[Example]:
        """Return the examples at ``indices``, in that order, unstripped and unchecked."""
        ...

    def fingerprint(self) -> str:
        """Return a string that changes whenever the pool's rows may have changed."""
        ...


@dataclass(frozen=True)
class ListPool:
    """A pool over an in-memory list of examples."""

    examples: Sequence[Example]

    def __len__(self) -> int:
        return len(self.examples)

    def take(self, indices: Sequence[int]) -> list[Example]:
        return [self.examples[i] for i in indices]

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for example in self.examples:
            add_to_digest(digest, example)
            digest.update((example.lang or "").encode())
        return f"list:{digest.hexdigest()}"


@dataclass(frozen=True)
class SampledRows:
    """Where each example of a subset comes from: position k is row ``rows[k]`` of pool
    ``keys[pools[k]]``; ``digest`` is :func:`types.examples_digest` of the stripped subset."""

    keys: tuple[str | None, ...]
    pools: np.ndarray  # int8, one per position
    rows: np.ndarray  # int64, one per position
    empty: int
    duplicate: int
    digest: str
    whole_pool: bool = False  # the request exceeded the pool and the whole usable pool was taken

    def __len__(self) -> int:
        return len(self.rows)


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


def pair_hash(source: str, target: str) -> int:
    """Return the 64-bit BLAKE2b hash of a (source, target) pair (lengths keep pairs apart)."""
    data = source.encode("utf-8")
    digest = hashlib.blake2b(len(data).to_bytes(8, "little"), digest_size=8)
    digest.update(data)
    digest.update(target.encode("utf-8"))
    return int.from_bytes(digest.digest(), "little")


@dataclass
class _Walk:
    """Takes usable rows from one pool in a seeded permutation, chunk by chunk."""

    pool: Pool
    order: np.ndarray
    dedupe: bool
    position: int = 0
    empty: int = 0
    duplicate: int = 0

    def __post_init__(self) -> None:
        self.buffer: deque[tuple[int, Example]] = deque()
        self.seen = np.zeros(0, dtype=np.uint64)  # sorted hashes of the pairs buffered so far

    def _unseen(self, hashes: np.ndarray) -> np.ndarray:
        """Mask of ``hashes`` that are new: not seen before and first of their value here."""
        keep = np.zeros(len(hashes), dtype=bool)
        keep[np.unique(hashes, return_index=True)[1]] = True
        if len(self.seen):
            at = np.minimum(np.searchsorted(self.seen, hashes), len(self.seen) - 1)
            keep &= self.seen[at] != hashes
        new = np.sort(hashes[keep])
        self.seen = np.insert(self.seen, np.searchsorted(self.seen, new), new)
        return keep

    def _read_chunk(self) -> None:
        size = min(MAX_CHUNK_ROWS, max(1024, self.position // 4))
        chunk = self.order[self.position : self.position + size]
        self.position += len(chunk)
        rows, examples = [], []
        for row, example in zip(chunk.tolist(), self.pool.take(chunk.tolist())):
            source, target = example.source.strip(), example.target.strip()
            if source and target:
                rows.append(row)
                examples.append(Example(source, target, example.lang))
        self.empty += len(chunk) - len(rows)
        if self.dedupe and examples:
            hashes = np.fromiter((pair_hash(e.source, e.target) for e in examples), np.uint64, len(examples))
            keep = self._unseen(hashes)
            self.duplicate += int(len(keep) - keep.sum())
            rows = [r for r, k in zip(rows, keep) if k]
            examples = [e for e, k in zip(examples, keep) if k]
        self.buffer.extend(zip(rows, examples))

    def take(self, limit: int | None) -> list[tuple[int, Example]]:
        """Return up to ``limit`` (all buffered when None, at least one) next usable (row,
        stripped example) items of the walk; an empty list only at its end."""
        while not self.buffer:
            if self.position >= len(self.order):
                return []
            self._read_chunk()
        count = len(self.buffer) if limit is None else min(limit, len(self.buffer))
        return [self.buffer.popleft() for _ in range(count)]


def _short_message(field: str, n: int, pool_name: str, size: int, skipped: str | None, dedupe: bool) -> str:
    """The error of a request beyond the pool: its size (and the skips when the walk ran out)
    and the options that change it."""
    fixes = ["lower it", "or set task.params.short_pool=whole_pool to train on the whole pool"]
    if skipped is None:
        return f"{field}={n} is larger than the {size} examples of {pool_name}; " + ", ".join(fixes)
    if dedupe:
        fixes.insert(0, "set task.params.dedupe=false to count raw pairs as the paper does")
    return f"{field}={n} needs more examples than the {size} of {pool_name}{skipped}; " + ", ".join(fixes)


def sample_rows(
    pools: dict[str | None, Pool],
    n: int | None,
    seed: int,
    *,
    field: str,
    pool_name: str,
    dedupe: bool = True,
    whole_pool: bool = False,
) -> SampledRows:
    """Return where the ``n`` usable examples (all when ``n`` is None) of the subset come from
    (``pools``: one per language; a single ``None`` key for one-language tasks); see the module
    docstring for nesting, the language mix, what is skipped, and ``whole_pool``. ``field``
    (the recipe field that set ``n``) and ``pool_name`` (e.g. 'mlsum train') name the request
    in messages; raise ``UserError`` when the pool is too small."""
    sizes = {lang: len(pool) for lang, pool in pools.items()}
    total = sum(sizes.values())
    if n is not None and n > total and not whole_pool:
        raise UserError(_short_message(field, n, pool_name, total, None, dedupe))
    walks = {
        lang: _Walk(pool, np.random.default_rng(_walk_seed(seed, lang)).permutation(len(pool)), dedupe)
        for lang, pool in pools.items()
    }
    keys = list(pools)
    digest = hashlib.sha256()
    pool_parts: list[np.ndarray] = []
    row_parts: list[np.ndarray] = []

    def keep(key_index: int, items: list[tuple[int, Example]]) -> None:
        for _, example in items:
            add_to_digest(digest, example)
        row_parts.append(np.fromiter((row for row, _ in items), np.int64, len(items)))
        pool_parts.append(np.full(len(items), key_index, dtype=np.int8))

    if n is None or n > total or len(keys) == 1:
        # one pool after the other (a single pool, or every pool whole), a chunk at a time
        left = None if n is None or n > total else n
        for index, key in enumerate(keys):
            while (left is None or left > 0) and (items := walks[key].take(left)):
                keep(index, items)
                left = None if left is None else left - len(items)
        if left and not whole_pool:
            walk = walks[keys[0]]
            usable = f" ({walk.empty} empty and {walk.duplicate} duplicate ones skipped)"
            raise UserError(_short_message(field, n or 0, pool_name, total, usable, dedupe))
    else:
        positions = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int8)
        for at, key in enumerate(language_schedule(sizes, n)):
            items = walks[key].take(1)
            if not items:
                walk = walks[key]
                usable = f" for language {key!r} ({walk.empty} empty and {walk.duplicate} duplicate ones skipped)"
                if not whole_pool:
                    raise UserError(_short_message(field, n, pool_name, len(walk.pool), usable, dedupe))
                whole = sample_rows(pools, None, seed, field=field, pool_name=pool_name, dedupe=dedupe)
                return _whole_pool(whole, field, n, pool_name)
            add_to_digest(digest, items[0][1])
            positions[0][at], positions[1][at] = items[0][0], keys.index(key)
        row_parts, pool_parts = [positions[0]], [positions[1]]
    empty = sum(w.empty for w in walks.values())
    duplicate = sum(w.duplicate for w in walks.values())
    if empty or duplicate:
        log.warning(
            "%s: skipped %d examples with an empty source or target and %d duplicate pairs while sampling",
            pool_name,
            empty,
            duplicate,
        )
    rows = np.concatenate(row_parts) if row_parts else np.zeros(0, np.int64)
    if not len(rows):
        raise UserError(f"{pool_name}: none of the {total} examples has both a source and a target")
    sampled = SampledRows(tuple(keys), np.concatenate(pool_parts), rows, empty, duplicate, digest.hexdigest())
    return _whole_pool(sampled, field, n, pool_name) if n is not None and len(rows) < n else sampled


def _whole_pool(sampled: SampledRows, field: str, n: int, pool_name: str) -> SampledRows:
    """``sampled`` (the whole usable pool) marked as standing in for a request of ``n``."""
    log.warning(
        "%s: %s=%d is more than its %d usable examples: training on all %d (task.params.short_pool=whole_pool)",
        pool_name,
        field,
        n,
        len(sampled),
        len(sampled),
    )
    return dataclasses.replace(sampled, whole_pool=True)


def sample_examples(
    pools: dict[str | None, Pool], n: int | None, seed: int, *, field: str, pool_name: str, dedupe: bool = True
) -> list[Example]:
    """Return the ``n`` usable examples (all when ``n`` is None) of :func:`sample_rows`, read
    and stripped, in subset order."""
    sampled = sample_rows(pools, n, seed, field=field, pool_name=pool_name, dedupe=dedupe)
    return read_examples([pools[key] for key in sampled.keys], sampled.pools, sampled.rows)


def read_examples(pools: Sequence[Pool], pool_of: np.ndarray, rows: np.ndarray) -> list[Example]:
    """Return the stripped examples at ``rows`` of ``pools[pool_of[k]]``, in order, reading
    each pool once."""
    examples: list[Example | None] = [None] * len(rows)
    for index, pool in enumerate(pools):
        where = np.flatnonzero(pool_of == index)
        if len(where):
            for at, example in zip(where.tolist(), pool.take(rows[where].tolist())):
                examples[at] = Example(example.source.strip(), example.target.strip(), example.lang)
    return examples  # type: ignore[return-value]
