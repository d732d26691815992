"""A training subset sampled once, stored beside the token cache, and mapped by every rank.

For a pool on disk (a hub dataset), :func:`stored_subset` keeps the subset's row numbers
(:class:`~scaling_repro.data.sampling.SampledRows`) in ``<index_dir>/<key>/``: ``rows.npy``
(int64), ``pools.npy`` (int8, which language's pool) and ``meta.json`` (the pool keys, the
skip counts, the examples' digest). The key hashes what decides the subset: the task, each
pool's fingerprint and size, n, the seed and the sampling options. Rank 0 samples under the
token cache's lock for that key (``<key>.lock``) and writes the folder under a temporary name,
then renames it; the other ranks wait for it (rank 0 takes the lock first, so they block on it)
and map its arrays, so no rank but one ever reads the pool's texts to sample. The token cache's
copies are built by rank 0 the same way (:func:`wait_for_main`). A rank that finds neither a
copy nor rank 0 at work within :data:`MAIN_GRACE_SECONDS` samples itself under the lock (the
subset is the same whoever samples it). A folder this process cannot write gets the subset
sampled in memory, as before.

:class:`SubsetView` is the train split itself: a read-only sequence that reads its examples
from the pools on demand, a chunk at a time, and carries the digest the token cache's key
needs, so a rank that maps a stored subset and an encoded copy reads no training text at all.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import operator
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from scaling_repro.data.sampling import Pool, SampledRows, read_examples
from scaling_repro.data.types import Example
from scaling_repro.fileio import atomic_write_json, fsync_directory, make_temp_dir
from scaling_repro.ranks import current_process

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bump when sampling (sampling.sample_rows) or this layout changes: old subsets are then never read."""
MAIN_GRACE_SECONDS = 120.0
"""How long a rank other than 0 waits for rank 0 to start sampling before it samples itself."""
_POLL_SECONDS = 0.2
T = TypeVar("T")
_VIEW_CHUNK = 4096


class SubsetView(Sequence[Example]):
    """The examples of a sampled subset, read from their pools on demand (stripped)."""

    def __init__(self, pools: Sequence[Pool], sampled: SampledRows) -> None:
        self.pools = tuple(pools)
        self.sampled = sampled

    @property
    def examples_digest(self) -> str:
        """The SHA-256 of the examples' texts (token_cache.examples_digest), without reading them."""
        return self.sampled.digest

    def __len__(self) -> int:
        return len(self.sampled)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            positions = np.arange(*index.indices(len(self)))
            return read_examples(self.pools, self.sampled.pools[positions], self.sampled.rows[positions])
        i = operator.index(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"example {index} of {len(self)}")
        return read_examples(self.pools, self.sampled.pools[i : i + 1], self.sampled.rows[i : i + 1])[0]

    def __iter__(self) -> Iterator[Example]:
        for start in range(0, len(self), _VIEW_CHUNK):
            yield from self[start : start + _VIEW_CHUNK]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing) for the block: the
    token cache's lock (``<key>.lock`` beside each copy), also taken for stored subsets."""
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def subset_key(task: str, pools: dict[str | None, Pool], n: int | None, seed: int, options: dict) -> str:
    """Return the folder name of a stored subset: ``<task>-train-rows-<24 hex digits>``."""
    identity = {
        "format": FORMAT_VERSION,
        "task": task,
        "pools": [[key, len(pool), pool.fingerprint()] for key, pool in pools.items()],
        "n": n,
        "seed": seed,
        "options": options,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return f"{task}-train-rows-{digest[:24]}"


def _write(root: Path, key: str, sampled: SampledRows) -> None:
    for leftover in root.glob(f".{key}.*.tmp"):  # from a write that was killed
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = make_temp_dir(root, prefix=f".{key}.", suffix=".tmp")
    try:
        for name in ("rows", "pools"):
            with open(tmp / f"{name}.npy", "wb") as handle:
                np.save(handle, getattr(sampled, name))
                handle.flush()
                os.fsync(handle.fileno())
        meta = {
            "format": FORMAT_VERSION,
            "key": key,
            "count": len(sampled),
            "keys": list(sampled.keys),
            "empty": sampled.empty,
            "duplicate": sampled.duplicate,
            "digest": sampled.digest,
            "whole_pool": sampled.whole_pool,
        }
        atomic_write_json(tmp / "meta.json", meta)
        shutil.rmtree(root / key, ignore_errors=True)
        os.replace(tmp, root / key)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_directory(root)


def read_stored(directory: Path, key: str) -> SampledRows | None:
    """Return the stored subset in ``directory`` with its arrays memory-mapped, or None when it
    is missing, partial or describes another key."""
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
            return None
        rows = np.load(directory / "rows.npy", mmap_mode="r")
        pools = np.load(directory / "pools.npy", mmap_mode="r")
        if len(rows) != meta["count"] or len(pools) != meta["count"]:
            return None
        keys = tuple(meta["keys"])
        return SampledRows(keys, pools, rows, meta["empty"], meta["duplicate"], meta["digest"], meta["whole_pool"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _lock_state(lock: Path) -> str:
    """Return 'held' when another process holds ``lock`` now, 'free' when not (or it does not
    exist yet), 'unusable' when this process cannot open it (a cache it may not write)."""
    try:
        with open(lock, "a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return "held"
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return "free"
    except FileNotFoundError:
        return "free"
    except OSError:
        return "unusable"


def wait_for_main(lock: Path, find: Callable[[], T | None], grace: float | None = None) -> T | None:
    """Return what ``find`` finds once rank 0 has built it under ``lock``, waiting on the lock
    while rank 0 holds it; None when rank 0 has not taken it within ``grace`` seconds (or
    released it without building). For ranks other than 0, so that rank 0 builds what every
    rank then maps."""
    deadline = time.monotonic() + (MAIN_GRACE_SECONDS if grace is None else grace)
    while True:
        state = _lock_state(lock)
        if state == "held":
            with locked(lock):
                return find()
        found = find()
        if state == "unusable":
            return found
        if found is not None or time.monotonic() > deadline:
            return found
        time.sleep(_POLL_SECONDS)


def stored_subset(
    index_dir: str | Path, key: str, sample: Callable[[], SampledRows], *, grace: float | None = None
) -> SampledRows:
    """Return the subset stored as ``index_dir/key``, sampled by ``sample`` and stored first
    when there is none (by rank 0; see the module docstring for the other ranks and for a
    folder this process cannot write)."""
    root = Path(index_dir).expanduser()
    found = read_stored(root / key, key)
    if found is None and not current_process().is_main:
        found = wait_for_main(root / f"{key}.lock", lambda: read_stored(root / key, key), grace)
        if found is None:
            waited = MAIN_GRACE_SECONDS if grace is None else grace
            message = "subset %s: not stored by rank 0 (not started within %.0f s, or failed): sampling it here"
            log.warning(message, key, waited)
    if found is not None:
        log.info("subset %s: %d row numbers mapped from %s", key, len(found), root)
        return found
    try:
        root.mkdir(parents=True, exist_ok=True)
        with locked(root / f"{key}.lock"):
            found = read_stored(root / key, key)
            if found is None:
                started = time.perf_counter()
                _write(root, key, sample())
                found = read_stored(root / key, key)
                assert found is not None, f"{root / key} unreadable just after writing it"
                log.info("subset %s: sampled in %.1f s, stored in %s", key, time.perf_counter() - started, root)
            return found
    except OSError as err:
        if not isinstance(err, PermissionError) and err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        log.warning("cannot store subset %s under %s (%s): sampling it in memory for this process", key, root, err)
        return sample()
