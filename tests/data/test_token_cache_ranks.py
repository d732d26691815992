"""Rank 0 encodes a split into the token cache; the other ranks wait for its copy and map it."""

from __future__ import annotations

import threading
import time

import pytest

from scaling_repro.config.recipe import TaskConfig
from scaling_repro.data import collate, subsets, token_cache
from scaling_repro.data.synthetic import pretraining_corpus
from scaling_repro.data.tasks import load_task
from scaling_repro.data.token_cache import cache_key, cached_encoding
from scaling_repro.models.tokenizer import load_tokenizer, train_tokenizer

SMALL = {"train_pool": 600, "dev_size": 20, "test_size": 10, "zero_shot_size": 10}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(pretraining_corpus(1000, parallel_share=0.3), 200, out)
    return load_tokenizer(str(out))


@pytest.fixture(scope="module")
def task():
    return load_task(TaskConfig(name="synthetic_mt", train_examples=100, params=SMALL))


@pytest.fixture
def rank_1(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")


@pytest.fixture
def encode_calls(monkeypatch):
    calls = []
    real = collate.encode_chunks

    def counting(*args, **kwargs):
        calls.append(kwargs.get("split"))
        return real(*args, **kwargs)

    monkeypatch.setattr(collate, "encode_chunks", counting)
    return calls


def test_another_rank_waits_while_rank_0_encodes_and_maps_its_copy(tmp_path, tokenizer, task, rank_1, encode_calls):
    key = cache_key(tokenizer, task.train, task.info, None, None, "train")
    held, release = threading.Event(), threading.Event()

    def rank_0():  # holds the lock as rank 0 does while it encodes, then builds the copy
        with subsets.locked(tmp_path / f"{key}.lock"):
            held.set()
            release.wait(10)
            token_cache._build(tmp_path, key, collate.encode_chunks(tokenizer, task.train, task.info, split="train"))

    worker = threading.Thread(target=rank_0)
    worker.start()
    held.wait(10)
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    view = cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    worker.join(10)
    assert len(view) == 100 and time.monotonic() - started >= 0.4
    assert encode_calls == ["train"]  # once, by "rank 0"


def test_another_rank_encodes_itself_when_rank_0_never_comes(tmp_path, tokenizer, task, rank_1, monkeypatch):
    monkeypatch.setattr(subsets, "MAIN_GRACE_SECONDS", 0.3)
    started = time.monotonic()
    view = cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    assert len(view) == 100 and time.monotonic() - started >= 0.3


def test_another_rank_does_not_wait_on_a_cache_it_cannot_write(tmp_path, tokenizer, task, rank_1, monkeypatch):
    monkeypatch.setattr(subsets, "MAIN_GRACE_SECONDS", 30)
    monkeypatch.setattr(subsets, "_lock_state", lambda lock: "unusable")
    started = time.monotonic()
    assert len(cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")) == 100
    assert time.monotonic() - started < 10
