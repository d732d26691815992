"""A token cache this process cannot write (a teammate's, a read-only mount): the splits it
holds are read from it; a split it lacks is encoded in memory with one warning, instead of the
run failing on the cache's lock file."""

from __future__ import annotations

import errno
import logging
import os

import numpy as np
import pytest

from scaling_repro.config.recipe import TaskConfig
from scaling_repro.data import token_cache
from scaling_repro.data.collate import encode_examples
from scaling_repro.data.synthetic import pretraining_corpus
from scaling_repro.data.tasks import load_task
from scaling_repro.data.token_cache import cached_encoding
from scaling_repro.models.tokenizer import load_tokenizer, train_tokenizer

SMALL = {"train_pool": 3000, "dev_size": 50, "test_size": 20, "zero_shot_size": 20}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(pretraining_corpus(3000, parallel_share=0.3), 300, out)
    return load_tokenizer(str(out))


@pytest.fixture(scope="module")
def task():
    return load_task(TaskConfig(name="synthetic_mt", train_examples=200, seed=3, params=SMALL))


@pytest.fixture
def read_only(monkeypatch):
    """Make the cache refuse new copies as a folder without write access does: its lock file
    cannot be created (root ignores file modes, so the refusal is patched in)."""

    def refused(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(token_cache, "locked", refused)
    monkeypatch.setattr(token_cache, "_READ_ONLY_WARNED", set())


def files_under(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names)


def test_a_split_missing_from_a_read_only_cache_is_encoded_in_memory_with_one_warning(
    tmp_path, tokenizer, task, read_only, caplog
):
    with caplog.at_level(logging.WARNING, logger="scaling_repro.data.token_cache"):
        train = cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
        dev = cached_encoding(tmp_path, tokenizer, task.dev, task.info, split="dev")
    assert list(train) == encode_examples(tokenizer, task.train, task.info, log_counts=False)
    assert list(dev) == encode_examples(tokenizer, task.dev, task.info, log_counts=False)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert str(tmp_path) in warning and "not writable" in warning and "in memory" in warning
    assert files_under(tmp_path) == []  # nothing written


def test_a_read_only_cache_still_serves_the_copies_it_holds(tmp_path, tokenizer, task, monkeypatch, caplog):
    built = cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    before = files_under(tmp_path)

    def refused(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(token_cache, "locked", refused)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="scaling_repro.data.token_cache"):
        again = cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    assert isinstance(again.tokens, np.memmap) and list(again) == list(built)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING] and files_under(tmp_path) == before


def test_an_empty_split_encodes_in_memory_too(tmp_path, tokenizer, task, read_only):
    view = cached_encoding(tmp_path, tokenizer, [], task.info, split="train")
    assert len(view) == 0 and list(view) == []


def test_other_errors_of_the_cache_are_not_hidden(tmp_path, tokenizer, task, monkeypatch):
    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(token_cache, "locked", full)
    with pytest.raises(OSError, match="No space left"):
        cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
