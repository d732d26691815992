"""Encoded splits on disk: tokenize a split once, then every rank and every run maps it.

A split encoded by :func:`scaling_repro.data.collate.encode_chunks` is stored as three flat
arrays in one directory per encoding: ``tokens.bin`` (int32, every example's ``input_ids``
back to back), ``offsets.bin`` (int64, ``n + 1`` entries; example ``i`` is
``tokens[offsets[i]:offsets[i+1]]``) and ``prompt_lengths.bin`` (int32), plus ``meta.json``
with the counts and the SHA-256 of each file. Labels are not stored: they are -100 on the
prompt and the input ids after it.

The directory's name is a hash of everything that determines the encoding: the examples'
source and target texts (so the task, its subset size and seed, and the files it was read
from), the tokenizer (its vocabulary, rules and special tokens), the resolved source/target
token limits, the task's template and the split's name, and :data:`FORMAT_VERSION`. Where the
cache lives is not part of a run's identity.

The directory is written under a temporary name and renamed into place, so readers see all of
it or none of it. A process that finds no valid copy takes an exclusive file lock on
``<name>.lock`` and builds it; the other ranks (and concurrent runs of the same subset) block
on the lock, then find the copy built. A copy whose files have the wrong size or hash is
rebuilt with a warning. A cache this process cannot write (a teammate's without group write
access, a read-only mount) serves the copies it holds; a split it lacks is encoded in memory
for the process, with one warning, and never stops the run.

Opening a copy reads none of its arrays: the files' sizes are checked every time, their SHA-256
only when they were just built or have changed since their SHA-256 last matched. That is
recorded in ``verified.json`` (size, mtime, ctime, inode of each file), so any write to a file,
its replacement, or an edit of ``meta.json`` makes the next open hash the files again (a
changed ``mtime`` set back by hand still changes the ``ctime``). Damage that changes none of
these (a bit flipped by the disk itself) goes unseen; delete the copy to encode it again. The
key is still the hash of the examples' texts, so a changed source or tokenizer never reads an
old copy.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import operator
import os
import shutil
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from scaling_repro.data import collate
from scaling_repro.data.collate import IGNORE_INDEX, EncodedExample
from scaling_repro.data.subsets import locked, wait_for_main
from scaling_repro.data.types import Example, TaskInfo, add_to_digest
from scaling_repro.fileio import atomic_write_json, fsync_directory, make_temp_dir
from scaling_repro.ranks import current_process

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bump when the encoding (collate.encode_chunks) or this layout changes: old copies are then
never read again."""

META_FILE = "meta.json"
VERIFIED_FILE = "verified.json"
"""Size, mtime, ctime and inode of each file when their SHA-256 last matched (see :func:`open_arrays`)."""
RACY_SECONDS = 2.0
"""Files changed this close before their verification are hashed again: coarse file
timestamps (a jiffy on Linux, a second on some filesystems) could hide a change just after it."""
ARRAYS = {"tokens": np.int32, "offsets": np.int64, "prompt_lengths": np.int32}
_READ_BLOCK = 1 << 24


class CacheError(ValueError):
    """A cached copy that is missing, partial or damaged."""


class EncodedView(Sequence):
    """Read-only sequence of EncodedExample over the flat arrays of one cached split.

    Holds only the (memory-mapped) arrays; ``view[i]`` builds example ``i``'s EncodedExample,
    equal to the one :func:`collate.encode_examples` returns.
    """

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, prompt_lengths: np.ndarray) -> None:
        self.tokens = tokens
        self.offsets = offsets
        self.prompt_lengths = prompt_lengths

    def __len__(self) -> int:
        return len(self.prompt_lengths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = operator.index(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"example {index} of {len(self)}")
        ids = self.tokens[int(self.offsets[i]) : int(self.offsets[i + 1])].tolist()
        prompt = int(self.prompt_lengths[i])
        return EncodedExample(input_ids=ids, labels=[IGNORE_INDEX] * prompt + ids[prompt:], prompt_length=prompt)


def tokenizer_fingerprint(tokenizer) -> str:
    """Return the SHA-256 (hex) of what decides how ``tokenizer`` encodes text: its class, its
    backend's full definition (vocabulary, merges, normalizer, pre-tokenizer) or else its vocabulary,
    its special token ids and its options other than file paths."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    definition = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    options = {
        k: v
        for k, v in sorted(getattr(tokenizer, "init_kwargs", {}).items())
        if not k.endswith("_file") and k not in ("name_or_path", "cache_dir")
    }
    identity = {
        "class": type(tokenizer).__name__,
        "special": [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id],
        "options": options,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    digest.update(definition.encode())
    return digest.hexdigest()


def examples_digest(examples: Iterable[Example]) -> str:
    """Return the SHA-256 (hex) of the examples' sources and targets, in order (a sequence that
    carries it precomputed, as a stored subset does, as its ``examples_digest``, is not read)."""
    known = getattr(examples, "examples_digest", None)
    if isinstance(known, str):
        return known
    digest = hashlib.sha256()
    for example in examples:
        add_to_digest(digest, example)
    return digest.hexdigest()


def cache_key(
    tokenizer,
    examples: Sequence[Example],
    info: TaskInfo,
    max_source_tokens: int | None,
    max_target_tokens: int | None,
    split: str,
) -> str:
    """Return the name of the cached copy of this encoding: ``<task>-<split>-<24 hex digits>``."""
    identity = {
        "format": FORMAT_VERSION,
        "split": split,
        "task": info.name,
        "template": info.template,
        "max_source_tokens": info.max_source_tokens if max_source_tokens is None else max_source_tokens,
        "max_target_tokens": info.max_target_tokens if max_target_tokens is None else max_target_tokens,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "examples": examples_digest(examples),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return f"{info.name}-{split}-{digest[:24]}"


def _append(handle: BinaryIO, digest: Any, values: np.ndarray) -> None:
    data = values.tobytes()
    handle.write(data)
    digest.update(data)


def _chunk_arrays(chunk: list[EncodedExample], tokens_before: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the flat token ids, the offsets of the examples' ends (counting from
    ``tokens_before``) and the prompt lengths of ``chunk``, in their stored dtypes."""
    lengths = np.fromiter((len(e.input_ids) for e in chunk), dtype=np.int64, count=len(chunk))
    flat = np.fromiter((t for e in chunk for t in e.input_ids), dtype=np.int64, count=int(lengths.sum()))
    if flat.size and (flat.min() < 0 or flat.max() > np.iinfo(np.int32).max):
        raise ValueError("token ids outside int32")
    prompts = np.fromiter((e.prompt_length for e in chunk), dtype=np.int64, count=len(chunk))
    ends = tokens_before + np.cumsum(lengths)
    return flat.astype(ARRAYS["tokens"]), ends.astype(ARRAYS["offsets"]), prompts.astype(ARRAYS["prompt_lengths"])


def encode_in_memory(chunks: Iterable[list[EncodedExample]]) -> EncodedView:
    """Return the encoded examples of ``chunks`` as a view of flat arrays in memory (what a
    cached copy holds, for a cache this process cannot write)."""
    parts = {name: [np.zeros(int(name == "offsets"), dtype)] for name, dtype in ARRAYS.items()}
    for chunk in chunks:  # _chunk_arrays returns the arrays in ARRAYS order
        for name, values in zip(ARRAYS, _chunk_arrays(chunk, int(parts["offsets"][-1][-1]))):
            parts[name].append(values)
    arrays = {name: np.concatenate(values) for name, values in parts.items()}
    return EncodedView(arrays["tokens"], arrays["offsets"], arrays["prompt_lengths"])


def write_arrays(directory: Path, chunks: Iterable[list[EncodedExample]], key: str) -> dict[str, Any]:
    """Write the encoded examples of ``chunks`` as the flat arrays and ``meta.json`` of a cached
    copy in ``directory`` (which must exist); return the meta data written."""
    handles = {name: open(directory / f"{name}.bin", "wb") for name in ARRAYS}
    digests = {name: hashlib.sha256() for name in ARRAYS}
    examples = tokens = 0
    try:
        _append(handles["offsets"], digests["offsets"], np.zeros(1, dtype=ARRAYS["offsets"]))
        for chunk in chunks:
            flat, ends, prompts = _chunk_arrays(chunk, tokens)
            _append(handles["tokens"], digests["tokens"], flat)
            _append(handles["offsets"], digests["offsets"], ends)
            _append(handles["prompt_lengths"], digests["prompt_lengths"], prompts)
            examples += len(chunk)
            tokens += len(flat)
        for handle in handles.values():
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        for handle in handles.values():
            handle.close()
    counts = {"tokens": tokens, "offsets": examples + 1, "prompt_lengths": examples}
    meta = {
        "format": FORMAT_VERSION,
        "key": key,
        "examples": examples,
        "files": {
            f"{name}.bin": {
                "dtype": np.dtype(dtype).name,
                "count": counts[name],
                "bytes": counts[name] * np.dtype(dtype).itemsize,
                "sha256": digests[name].hexdigest(),
            }
            for name, dtype in ARRAYS.items()
        },
    }
    atomic_write_json(directory / META_FILE, meta)
    return meta


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _map(path: Path, dtype: Any, count: int) -> np.ndarray:
    if count == 0:  # mmap cannot map an empty file
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,))


def _file_stats(directory: Path) -> dict[str, list[int]]:
    """Return (size, mtime, ctime in ns, inode) of the meta data and every array file: what
    any write to them, or their replacement, changes."""
    stats = {}
    for name in (META_FILE, *(f"{array}.bin" for array in ARRAYS)):
        st = (directory / name).stat()
        stats[name] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    return stats


def _verified_unchanged(directory: Path) -> bool:
    """Return whether the files of ``directory`` are as they were when their SHA-256 last
    matched (:data:`VERIFIED_FILE`). Not when a file changed within :data:`RACY_SECONDS` before
    that stamp: a later write in the same timestamp tick would not show in its times."""
    stamp = directory / VERIFIED_FILE
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
        stamped_ns, now = stamp.stat().st_mtime_ns, _file_stats(directory)
    except (OSError, ValueError):
        return False
    if recorded != now:
        return False
    latest_change = max(max(mtime, ctime) for _, mtime, ctime, _ in now.values())
    return latest_change < stamped_ns - int(RACY_SECONDS * 1e9)


def _stamp_verified(directory: Path) -> None:
    """Record that the files of ``directory`` matched their SHA-256 as they are now (best
    effort: a cache directory this process cannot write is verified at every open)."""
    try:
        atomic_write_json(directory / VERIFIED_FILE, _file_stats(directory))
    except OSError as err:
        log.debug("token cache %s: cannot record its verification (%s)", directory, err)


def open_arrays(directory: Path, key: str) -> EncodedView:
    """Return the view of the cached copy in ``directory`` after checking its meta data, the
    size of every file and the offsets' ends, and the SHA-256 of every file unless none of
    them changed since their SHA-256 last matched (:data:`VERIFIED_FILE`); raise CacheError
    when it is missing, partial or damaged."""
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
            raise CacheError(f"{directory / META_FILE} describes another encoding")
        unchanged, examples = _verified_unchanged(directory), int(meta["examples"])
        arrays = {}
        for name, dtype in ARRAYS.items():
            path, info = directory / f"{name}.bin", meta["files"][f"{name}.bin"]
            if path.stat().st_size != info["bytes"] or info["bytes"] != info["count"] * np.dtype(dtype).itemsize:
                raise CacheError(f"{path} has {path.stat().st_size} bytes, not {info['bytes']}")
            if not unchanged and _file_sha256(path) != info["sha256"]:
                raise CacheError(f"{path} does not match its SHA-256")
            arrays[name] = _map(path, dtype, info["count"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        # AttributeError: meta data that is not a JSON object; RecursionError: nested too deep to parse
        if isinstance(err, CacheError):
            raise
        raise CacheError(f"{directory}: {err}") from err
    view = EncodedView(arrays["tokens"], arrays["offsets"], arrays["prompt_lengths"])
    if len(view.offsets) != examples + 1 or view.offsets[0] != 0 or view.offsets[-1] != len(view.tokens):
        raise CacheError(f"{directory}: offsets do not span the tokens")
    if not unchanged:
        _stamp_verified(directory)
    return view


def _open_or_none(directory: Path, key: str) -> EncodedView | None:
    try:
        return open_arrays(directory, key)
    except CacheError:
        return None


def _build(root: Path, key: str, chunks: Iterable[list[EncodedExample]]) -> None:
    """Write a copy under a temporary name and rename it to ``root/key`` (replacing a bad one)."""
    for leftover in root.glob(f".{key}.*.tmp"):  # from a build that was killed
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = make_temp_dir(root, prefix=f".{key}.", suffix=".tmp")
    try:
        write_arrays(tmp, chunks, key)
        shutil.rmtree(root / key, ignore_errors=True)
        os.replace(tmp, root / key)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_directory(root)


_READ_ONLY_WARNED: set[Path] = set()  # caches this process was told it cannot write


def cached_encoding(
    cache_root: str | Path,
    tokenizer,
    examples: Sequence[Example],
    info: TaskInfo,
    max_source_tokens: int | None = None,
    max_target_tokens: int | None = None,
    *,
    split: str = "examples",
) -> EncodedView:
    """Return the encoded ``examples`` (as :func:`collate.encode_examples` would) as a view of
    their cached copy under ``cache_root``, encoding and writing it first when there is none or
    it is damaged (rebuilt with a warning); see the module docstring for the key and locking.

    A cache this process cannot write (a teammate's, or read-only) still serves the copies it
    holds; a split it lacks is encoded in memory for this process, with one warning per cache.
    """
    root = Path(cache_root).expanduser()
    key = cache_key(tokenizer, examples, info, max_source_tokens, max_target_tokens, split)
    directory = root / key
    limits = (max_source_tokens, max_target_tokens)
    encode = partial(collate.encode_chunks, tokenizer, examples, info, *limits, split=split)
    with contextlib.suppress(CacheError):
        view = open_arrays(directory, key)
        log.info("%s %s: %d encoded examples from %s", info.name, split, len(view), directory)
        return view
    if not current_process().is_main:  # rank 0 encodes; the others map its copy
        found = wait_for_main(root / f"{key}.lock", partial(_open_or_none, directory, key))
        if found is not None:
            log.info("%s %s: %d encoded examples from %s", info.name, split, len(found), directory)
            return found
    try:
        root.mkdir(parents=True, exist_ok=True)
        with locked(root / f"{key}.lock"):
            try:  # another process may have built it while this one waited for the lock
                view = open_arrays(directory, key)
            except CacheError as err:
                if directory.exists():
                    message = "token cache %s is unusable (%s): encoding %s %s again"
                    log.warning(message, directory, err, info.name, split)
                _build(root, key, encode())
                view = open_arrays(directory, key)
                log.info("%s %s: encoded %d examples into %s", info.name, split, len(view), directory)
                return view
    except OSError as err:
        if not isinstance(err, PermissionError) and err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        if root not in _READ_ONLY_WARNED:
            _READ_ONLY_WARNED.add(root)
            log.warning(
                "token cache %s is not writable (%s): the splits it lacks are encoded in memory for this process "
                "(the copies it has are still read); give your group write access to it, or set task.cache_dir "
                "to a folder you can write",
                root,
                err,
            )
        view = encode_in_memory(encode())
        log.info("%s %s: encoded %d examples in memory", info.name, split, len(view))
        return view
    log.info("%s %s: %d encoded examples from %s", info.name, split, len(view), directory)
    return view
