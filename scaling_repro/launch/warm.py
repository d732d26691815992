"""Work every forked run would repeat, done once in the fork server that forks them.

The fork server builds, for every child to inherit instead of rebuilding:

- the synthetic task's splits for each ``task.params`` listed in the environment variable
  :data:`WARM_ENV`, which :func:`start_fork_server` sets for the server's start only and
  :func:`warm_requested_caches` removes once read (so no other process inherits it): ~0.3-0.7 s
  per run at the tiny study's size;
- transformers' checkpoint conversion mapping, which a process builds on its first
  ``from_pretrained`` (~0.2-0.4 s of regex compilation).

Both are pure caches: a child computes the same values without them, only later. Importing
this module builds nothing; the server calls :func:`warm_requested_caches` from its last
preload, :mod:`scaling_repro.launch.fork_server`.
"""

from __future__ import annotations

import json
import logging
import multiprocessing.forkserver
import os
from collections.abc import Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

WARM_ENV = "SCALING_REPRO_WARM_SYNTHETIC_PARAMS"
"""JSON list of synthetic_mt ``task.params`` whose splits the fork server builds at start."""


def synthetic_task_params(specs: Iterable[Any]) -> list[dict[str, Any]]:
    """Return the distinct ``task.params`` of the synthetic_mt runs among ``specs`` (RunSpecs)."""
    params = {json.dumps(spec.task.params, sort_keys=True) for spec in specs if spec.task.name == "synthetic_mt"}
    return [json.loads(p) for p in sorted(params)]


def start_fork_server(synthetic_params: Sequence[dict[str, Any]]) -> None:
    """Start the fork server of the 'forkserver' context, unless it runs already, asking it to
    prebuild its caches with the splits of ``synthetic_params``. The request reaches the server
    only: this process's environment is restored."""
    previous = os.environ.get(WARM_ENV)
    os.environ[WARM_ENV] = json.dumps(list(synthetic_params))
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        if previous is None:
            del os.environ[WARM_ENV]
        else:
            os.environ[WARM_ENV] = previous


def warm_caches(synthetic_params: Iterable[dict[str, Any]]) -> None:
    """Build the synthetic splits of each ``task.params`` and transformers' conversion mapping;
    return nothing (the caches are the modules' own)."""
    from scaling_repro.data.synthetic import load_synthetic

    for params in synthetic_params:
        load_synthetic(params)
    try:
        from transformers.conversion_mapping import get_checkpoint_conversion_mapping

        get_checkpoint_conversion_mapping("llama")
    except (ImportError, AttributeError):  # another transformers version: children build it themselves
        pass


def warm_requested_caches() -> bool:
    """Remove :data:`WARM_ENV` from this process's environment and build the caches it asks
    for; return whether it asked. A cache that fails to build is a warning, not an error."""
    request = os.environ.pop(WARM_ENV, None)
    if request is None:
        return False
    try:
        warm_caches(json.loads(request))
    except Exception as err:  # noqa: BLE001 - a cache that failed to build must not stop the server
        log.warning("fork server: could not prebuild caches (%s); each run builds its own", err)
    return True
