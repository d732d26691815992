"""A subset of a pool on disk is sampled once (rank 0), stored beside the token cache, and mapped
by the other ranks and later runs."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import time

import pytest

from scaling_repro.config.recipe import TaskConfig
from scaling_repro.data import subsets
from scaling_repro.data.sampling import ListPool, sample_rows
from scaling_repro.data.subsets import SubsetView, read_stored, stored_subset, subset_key
from scaling_repro.data.tasks import load_task
from scaling_repro.data.token_cache import examples_digest
from scaling_repro.data.types import Example
from tests.helpers.paths import FIXTURES, pythonpath

_spec = importlib.util.spec_from_file_location("hub_copy", FIXTURES / "data" / "hub_copy.py")
hub_copy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hub_copy)

_RANK_SCRIPT = """
import json, logging, sys
from scaling_repro.config.recipe import TaskConfig
from scaling_repro.data.tasks import load_task
from scaling_repro.data.token_cache import examples_digest

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
cfg = TaskConfig(name="wmt14_en_de", data_dir=sys.argv[1], cache_dir=sys.argv[2], train_examples=20, seed=3)
train = load_task(cfg).train
print(json.dumps({"n": len(train), "digest": examples_digest(list(train)), "sources": [e.source for e in train]}))
"""


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory):
    return hub_copy.write_hub_copy(tmp_path_factory.mktemp("hub"))


def _cfg(hub_dir, cache_dir, **fields) -> TaskConfig:
    return TaskConfig(name="wmt14_en_de", data_dir=str(hub_dir), cache_dir=str(cache_dir), **fields)


def _start_rank(rank: int, hub_dir, cache_dir) -> subprocess.Popen:
    env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": pythonpath()}
    return subprocess.Popen(
        [sys.executable, "-c", _RANK_SCRIPT, str(hub_dir), str(cache_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_rank_0_samples_once_and_the_other_rank_maps_its_rows(hub_dir, tmp_path):
    other = _start_rank(1, hub_dir, tmp_path / "cache")  # started first: it must wait for rank 0
    time.sleep(1.0)
    main = _start_rank(0, hub_dir, tmp_path / "cache")
    (main_out, main_log), (other_out, other_log) = main.communicate(timeout=120), other.communicate(timeout=120)
    assert main.returncode == 0 and other.returncode == 0, main_log + other_log
    assert "sampled in" in main_log and "sampled in" not in other_log
    assert "row numbers mapped from" in other_log
    assert json.loads(main_out) == json.loads(other_out)
    assert json.loads(main_out)["n"] == 20
    assert len(list((tmp_path / "cache" / "token_cache").glob("wmt14_en_de-train-rows-*/rows.npy"))) == 1


def test_a_later_run_maps_the_stored_subset_without_sampling(hub_dir, tmp_path, caplog):
    first = load_task(_cfg(hub_dir, tmp_path, train_examples=12))
    caplog.clear()  # the first load's lines, captured where an earlier test left INFO on
    with caplog.at_level(logging.INFO, logger="scaling_repro.data.subsets"):
        again = load_task(_cfg(hub_dir, tmp_path, train_examples=12))
    assert "row numbers mapped" in caplog.text and "sampled in" not in caplog.text
    assert list(again.train) == list(first.train)


def test_the_view_of_a_stored_subset_carries_the_digest_of_its_examples(hub_dir, tmp_path):
    train = load_task(_cfg(hub_dir, tmp_path, train_examples=15)).train
    assert isinstance(train, SubsetView)
    assert examples_digest(train) == examples_digest(list(train))
    assert train[3] == list(train)[3] and train[-1] == list(train)[14] and train[2:5] == list(train)[2:5]


def test_subsets_differ_by_size_seed_and_options(hub_dir, tmp_path):
    load_task(_cfg(hub_dir, tmp_path, train_examples=5))
    load_task(_cfg(hub_dir, tmp_path, train_examples=5, seed=1))
    load_task(_cfg(hub_dir, tmp_path, train_examples=5, params={"dedupe": True}))
    assert len(list((tmp_path / "token_cache").glob("*-train-rows-*/meta.json"))) == 3


def _pools() -> dict:
    return {None: ListPool([Example(f"s{i}", f"t{i}") for i in range(50)])}


def test_a_rank_other_than_0_samples_itself_when_rank_0_never_comes(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    pools = _pools()
    key = subset_key("toy", pools, 10, 0, {})
    with caplog.at_level(logging.WARNING):
        found = stored_subset(tmp_path, key, lambda: sample_rows(pools, 10, 0, field="f", pool_name="p"), grace=0.3)
    assert len(found) == 10 and "not stored by rank 0" in caplog.text
    assert read_stored(tmp_path / key, key) is not None


def test_a_stored_subset_of_another_key_is_not_read(tmp_path):
    pools = _pools()
    key = subset_key("toy", pools, 10, 0, {})
    stored_subset(tmp_path, key, lambda: sample_rows(pools, 10, 0, field="f", pool_name="p"))
    (tmp_path / key / "meta.json").write_text(json.dumps({"format": subsets.FORMAT_VERSION, "key": "other"}))
    assert read_stored(tmp_path / key, key) is None


def test_the_key_follows_the_pool_contents():
    pools = _pools()
    other = {None: ListPool([Example(f"s{i}", f"u{i}") for i in range(50)])}
    assert subset_key("toy", pools, 10, 0, {}) != subset_key("toy", other, 10, 0, {})
    assert subset_key("toy", pools, 10, 0, {}) == subset_key("toy", _pools(), 10, 0, {})
