"""The fork server's prebuilt caches: what a forked run would otherwise rebuild."""

import json
import os

from scaling_repro.config.recipe import RunSpec
from scaling_repro.data.synthetic import build_splits, synthetic_params
from scaling_repro.launch.warm import WARM_ENV, request_warm, warm_caches

PARAMS = {"train_pool": 300, "dev_size": 20, "test_size": 20, "zero_shot_size": 20}


def spec(task: dict) -> RunSpec:
    return RunSpec.model_validate({"name": "warm", "task": task, "model": {"name": "tiny-xs"}, "method": {"kind": "full"}})


def test_request_warm_names_each_distinct_synthetic_task_once(monkeypatch):
    monkeypatch.delenv(WARM_ENV, raising=False)
    synthetic = {"name": "synthetic_mt", "params": PARAMS}
    request_warm([spec(synthetic), spec({**synthetic, "train_examples": 50}), spec({"name": "flores200"})])
    assert json.loads(os.environ[WARM_ENV]) == [PARAMS]


def test_warm_caches_builds_the_splits_a_run_then_reuses():
    build_splits.cache_clear()
    warm_caches([PARAMS])
    assert build_splits.cache_info().currsize == 1
    build_splits(synthetic_params(PARAMS))
    assert build_splits.cache_info().hits == 1
