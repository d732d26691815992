"""The fork server's prebuilt caches: what a forked run would otherwise rebuild."""

import json
import multiprocessing.forkserver
import os

from scaling_repro.config.recipe import RunSpec
from scaling_repro.data.synthetic import build_splits, synthetic_params
from scaling_repro.launch.warm import (
    WARM_ENV,
    start_fork_server,
    synthetic_task_params,
    warm_caches,
)

PARAMS = {"train_pool": 300, "dev_size": 20, "test_size": 20, "zero_shot_size": 20}


def spec(task: dict) -> RunSpec:
    return RunSpec.model_validate(
        {"name": "warm", "task": task, "model": {"name": "tiny-xs"}, "method": {"kind": "full"}}
    )


def test_the_synthetic_tasks_of_a_sweep_are_listed_once_each():
    synthetic = {"name": "synthetic_mt", "params": PARAMS}
    specs = [spec(synthetic), spec({**synthetic, "train_examples": 50}), spec({"name": "flores200"})]
    assert synthetic_task_params(specs) == [PARAMS]


def test_starting_the_server_passes_the_request_to_it_only(monkeypatch):
    requests = []
    monkeypatch.setattr(multiprocessing.forkserver, "ensure_running", lambda: requests.append(os.environ[WARM_ENV]))
    monkeypatch.delenv(WARM_ENV, raising=False)
    start_fork_server([PARAMS])
    assert [json.loads(r) for r in requests] == [[PARAMS]]
    assert WARM_ENV not in os.environ


def test_warm_caches_builds_the_splits_a_run_then_reuses():
    build_splits.cache_clear()
    warm_caches([PARAMS])
    assert build_splits.cache_info().currsize == 1
    build_splits(synthetic_params(PARAMS))
    assert build_splits.cache_info().hits == 1
