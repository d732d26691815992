"""The token cache: encoded splits written once, mapped by every later caller."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from scaling_repro.config.recipe import TaskConfig
from scaling_repro.data import collate, token_cache
from scaling_repro.data.collate import encode_examples
from scaling_repro.data.synthetic import pretraining_corpus
from scaling_repro.data.tasks import load_task
from scaling_repro.data.token_cache import (
    META_FILE,
    EncodedView,
    cache_key,
    cached_encoding,
    open_arrays,
)
from scaling_repro.data.types import Example
from scaling_repro.models.tokenizer import load_tokenizer, train_tokenizer
from tests.helpers.factories import build_run_spec

SMALL = {"train_pool": 3000, "dev_size": 50, "test_size": 20, "zero_shot_size": 20}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(pretraining_corpus(3000, parallel_share=0.3), 300, out)
    return out


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return load_tokenizer(str(tokenizer_dir))


@pytest.fixture(scope="module")
def task():
    return load_task(TaskConfig(name="synthetic_mt", train_examples=400, seed=3, params=SMALL))


@pytest.fixture
def encode_calls(monkeypatch):
    """How many times the cache encoded a split."""
    calls = []
    real = collate.encode_chunks

    def counting(*args, **kwargs):
        calls.append(kwargs.get("split"))
        return real(*args, **kwargs)

    monkeypatch.setattr(collate, "encode_chunks", counting)
    return calls


@pytest.mark.parametrize("limits", [(None, None), (12, 6)])
def test_view_items_equal_the_list_encoding(tmp_path, tokenizer, task, limits):
    view = cached_encoding(tmp_path, tokenizer, task.train, task.info, *limits, split="train")
    expected = encode_examples(tokenizer, task.train, task.info, *limits, log_counts=False)
    assert len(view) == len(expected) == 400
    assert [view[i] for i in range(len(view))] == expected
    assert view[-1] == expected[-1] and view[3:6] == expected[3:6] and list(view) == expected
    with pytest.raises(IndexError):
        view[400]


def test_a_cache_is_built_once_and_reused(tmp_path, tokenizer_dir, tokenizer, task, encode_calls):
    first = cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    again = cached_encoding(tmp_path, load_tokenizer(str(tokenizer_dir)), list(task.train), task.info, split="train")
    assert encode_calls == ["train"]
    assert list(again) == list(first)
    cached_encoding(tmp_path, tokenizer, task.train[:200], task.info, split="train")  # another subset
    cached_encoding(tmp_path, tokenizer, task.train, task.info, max_target_tokens=8, split="train")
    cached_encoding(tmp_path, tokenizer, task.train, task.info, split="dev")
    assert len(encode_calls) == 4
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 4


def test_the_key_covers_what_decides_the_encoding(tokenizer, task):
    key = cache_key(tokenizer, task.train, task.info, None, None, "train")
    assert key == cache_key(tokenizer, task.train, task.info, task.info.max_source_tokens, None, "train")
    other_seed = load_task(TaskConfig(name="synthetic_mt", train_examples=400, seed=4, params=SMALL)).train
    tweaked = [Example(task.train[0].source, task.train[0].target + "x")] + task.train[1:]
    others = [
        cache_key(tokenizer, other_seed, task.info, None, None, "train"),
        cache_key(tokenizer, tweaked, task.info, None, None, "train"),
        cache_key(tokenizer, task.train, task.info, 30, None, "train"),
        cache_key(tokenizer, task.train, task.info, None, None, "dev"),
    ]
    assert len({key, *others}) == 5


def _flip_a_byte(directory):
    path = directory / "tokens.bin"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(directory):
    path = directory / "offsets.bin"
    path.write_bytes(path.read_bytes()[:-5])


def _drop_meta(directory):
    (directory / META_FILE).unlink()


def _meta_of_another_key(directory):
    meta = json.loads((directory / META_FILE).read_text())
    (directory / META_FILE).write_text(json.dumps({**meta, "key": "else"}))


@pytest.mark.parametrize("damage", [_flip_a_byte, _truncate, _drop_meta, _meta_of_another_key])
def test_a_damaged_cache_is_rebuilt_with_a_warning(tmp_path, tokenizer, task, encode_calls, caplog, damage):
    expected = list(cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train"))
    (directory,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    damage(directory)
    key = directory.name
    with pytest.raises(token_cache.CacheError):
        open_arrays(directory, key)
    with caplog.at_level(logging.WARNING, logger="scaling_repro.data.token_cache"):
        rebuilt = cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    assert "is unusable" in caplog.text and str(directory) in caplog.text
    assert len(encode_calls) == 2 and list(rebuilt) == expected
    assert open_arrays(directory, key) is not None
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_killed_build_leaves_nothing_that_is_read(tmp_path, tokenizer, task, encode_calls, monkeypatch):
    def killed(directory, chunks, key):
        (directory / "tokens.bin").write_bytes(b"\0" * 8)
        raise KeyboardInterrupt

    monkeypatch.setattr(token_cache, "write_arrays", killed)
    with pytest.raises(KeyboardInterrupt):
        cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]
    monkeypatch.undo()
    assert len(cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")) == 400


def test_concurrent_callers_encode_once(tmp_path, tokenizer_dir, task, encode_calls):
    """Ranks (here threads, each with its own tokenizer) wait on the file lock for the one
    that encodes, then map its copy."""
    tokenizers = [load_tokenizer(str(tokenizer_dir)) for _ in range(4)]
    views: list = [None] * 4

    def rank(i):
        views[i] = cached_encoding(tmp_path, tokenizers[i], task.train, task.info, split="train")

    threads = [threading.Thread(target=rank, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert encode_calls == ["train"]
    assert all(list(view) == list(views[0]) for view in views)


def test_the_view_holds_arrays_not_examples(tmp_path, tokenizer, task):
    cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    (directory,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    tracemalloc.start()
    try:
        view = open_arrays(directory, directory.name)
        held, _ = tracemalloc.get_traced_memory()
        _ = encode_examples(tokenizer, task.train, task.info, log_counts=False)
        listed, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(view.tokens, np.memmap) and isinstance(view.offsets, np.memmap)
    assert set(vars(view)) == {"tokens", "offsets", "prompt_lengths"}
    assert held < 32_000 and listed - held > 20 * held


def test_an_empty_split_is_an_empty_view(tmp_path, tokenizer, task):
    view = cached_encoding(tmp_path, tokenizer, [], task.info, split="train")
    assert isinstance(view, EncodedView) and len(view) == 0 and list(view) == []
    assert len(cached_encoding(tmp_path, tokenizer, [], task.info, split="train")) == 0


def _spec(tmp_path, tokenizer_dir, lr=1e-3, **task):
    return build_run_spec(
        name="cache",
        output_dir=str(tmp_path / "runs"),
        task={"train_examples": 64, "dev_examples": 16, "params": SMALL, **task},
        model={"name": "tiny-xs", "init": "random", "tokenizer": str(tokenizer_dir)},
        method={"lr": lr, "batch_size": 16},
    )


def test_runs_of_one_subset_share_its_encoding(tmp_path, tokenizer_dir, tokenizer, encode_calls):
    from scaling_repro.pipeline import PreparedRun, _encode, token_cache_dir

    specs = [_spec(tmp_path, tokenizer_dir, lr) for lr in (1e-3, 3e-3)]
    assert specs[0].run_id != specs[1].run_id
    runs = [PreparedRun(spec, load_task(spec.task), tokenizer, None, None, None) for spec in specs]
    encoded = [(_encode(run, run.task.train, "train"), _encode(run, run.task.dev, "dev")) for run in runs]
    assert encode_calls == ["train", "dev"]
    for run, (train, dev) in zip(runs, encoded):
        assert list(train) == encode_examples(tokenizer, run.task.train, run.task.info, log_counts=False)
        assert list(dev) == encode_examples(tokenizer, run.task.dev, run.task.info, log_counts=False)
    assert token_cache_dir(specs[0]) == tmp_path / "runs" / ".token_cache"


def test_the_cache_location_is_not_part_of_the_run(tmp_path, tokenizer_dir):
    from scaling_repro.pipeline import token_cache_dir

    spec = _spec(tmp_path, tokenizer_dir)
    moved = _spec(tmp_path, tokenizer_dir, cache_dir=str(tmp_path / "hf"))
    assert token_cache_dir(moved) == tmp_path / "hf" / "token_cache"
    assert moved.run_id == spec.run_id


@pytest.fixture
def hashed(monkeypatch):
    """The cache files whose SHA-256 the cache computed."""
    files = []
    real = token_cache._file_sha256

    def counting(path):
        files.append(path.name)
        return real(path)

    monkeypatch.setattr(token_cache, "_file_sha256", counting)
    return files


def _verified_long_ago(directory):
    """As if the last verification was made well after the files were written (a test runs
    within the coarse-timestamp window in which a verification is not trusted)."""
    stamp = directory / token_cache.VERIFIED_FILE
    later = stamp.stat().st_mtime_ns + 60 * 10**9
    os.utime(stamp, ns=(later, later))


def _built(tmp_path, tokenizer, task):
    cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    (directory,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return directory


def test_a_new_copy_is_hashed_once_after_it_is_built(tmp_path, tokenizer, task, hashed):
    _built(tmp_path, tokenizer, task)
    assert sorted(hashed) == ["offsets.bin", "prompt_lengths.bin", "tokens.bin"]


def test_a_verified_copy_opens_without_hashing_its_files(tmp_path, tokenizer, task, encode_calls, hashed):
    expected = list(cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train"))
    (directory,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    _verified_long_ago(directory)
    hashed.clear()
    again = cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    assert hashed == [] and encode_calls == ["train"] and list(again) == expected


def test_a_copy_verified_just_after_it_was_written_is_hashed_again(tmp_path, tokenizer, task, hashed):
    directory = _built(tmp_path, tokenizer, task)
    hashed.clear()
    open_arrays(directory, directory.name)  # the stamp is within RACY_SECONDS of the writes
    assert len(hashed) == 3


def _rewrite_keeping_times(path, change):
    """Apply ``change`` to the bytes of ``path`` and set its mtime back (its ctime still moves)."""
    before = path.stat()
    time.sleep(0.05)  # past the coarse timestamp tick of the build, as any later change is
    path.write_bytes(change(path.read_bytes()))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_verified_copy_rewritten_with_its_own_bytes_is_hashed_again_and_kept(
    tmp_path, tokenizer, task, encode_calls, hashed
):
    directory = _built(tmp_path, tokenizer, task)
    _verified_long_ago(directory)
    _rewrite_keeping_times(directory / "offsets.bin", lambda b: b)
    hashed.clear()
    cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    assert len(hashed) == 3 and encode_calls == ["train"]


def test_a_copy_flipped_after_its_verification_is_rebuilt_with_a_warning(
    tmp_path, tokenizer, task, encode_calls, caplog
):
    directory = _built(tmp_path, tokenizer, task)
    _verified_long_ago(directory)
    _rewrite_keeping_times(directory / "tokens.bin", lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]))
    with caplog.at_level(logging.WARNING, logger="scaling_repro.data.token_cache"):
        cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    assert "does not match its SHA-256" in caplog.text and encode_calls == ["train", "train"]


def test_a_copy_that_cannot_record_its_verification_still_opens(tmp_path, tokenizer, task, monkeypatch, hashed):
    real = token_cache.atomic_write_json

    def refusing_the_stamp(path, data):
        if Path(path).name == token_cache.VERIFIED_FILE:
            raise PermissionError(13, "Permission denied", str(path))
        real(path, data)

    monkeypatch.setattr(token_cache, "atomic_write_json", refusing_the_stamp)
    directory = _built(tmp_path, tokenizer, task)
    assert not (directory / token_cache.VERIFIED_FILE).exists()
    hashed.clear()
    assert len(open_arrays(directory, directory.name)) == 400 and len(hashed) == 3  # verified at every open
