"""The fork server's prebuilt caches: what a forked run would otherwise rebuild."""

import json
import multiprocessing.forkserver
import os
import subprocess
import sys

import pytest

from scaling_repro.config.recipe import RunSpec
from scaling_repro.data.synthetic import build_splits, synthetic_params
from scaling_repro.launch.local import PRELOAD_MODULES, SERVER_START, _forkserver_context
from scaling_repro.launch.warm import (
    WARM_ENV,
    start_fork_server,
    synthetic_task_params,
    warm_caches,
)
from tests.helpers.factories import build_run_spec

PARAMS = {"train_pool": 300, "dev_size": 20, "test_size": 20, "zero_shot_size": 20}


def spec(task: dict) -> RunSpec:
    return build_run_spec(name="warm", task=task, model={"name": "tiny-xs"})


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


def _in_fresh_interpreter(code: str, request: list[dict] | None) -> list:
    """Run ``code`` (which prints one JSON value) in a new interpreter whose environment holds
    ``request`` as the fork server's warm request; return what it printed."""
    env = {k: v for k, v in os.environ.items() if k != WARM_ENV}
    if request is not None:
        env[WARM_ENV] = json.dumps(request)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


CACHE_AND_REQUEST = (
    "import json, os; from scaling_repro.data.synthetic import build_splits; "
    f"print(json.dumps([build_splits.cache_info().currsize, os.environ.get({WARM_ENV!r})]))"
)


def test_importing_the_warm_module_builds_nothing_and_leaves_the_request():
    code = "import scaling_repro.launch.warm; " + CACHE_AND_REQUEST
    assert _in_fresh_interpreter(code, [PARAMS]) == [0, json.dumps([PARAMS])]


@pytest.mark.slow
def test_the_fork_server_s_last_preload_builds_the_requested_splits_and_removes_the_request():
    code = "import scaling_repro.launch.fork_server; " + CACHE_AND_REQUEST
    assert _in_fresh_interpreter(code, [PARAMS]) == [1, None]


def test_the_fork_server_preloads_the_pipeline_before_its_warm_up():
    assert SERVER_START not in PRELOAD_MODULES
    assert _forkserver_context() is not None
    assert multiprocessing.forkserver._forkserver._preload_modules[-1] == SERVER_START
