"""Work every forked run would repeat, done once in the fork server that forks them.

The server imports this module last (:data:`scaling_repro.launch.local.PRELOAD_MODULES`), and
importing it builds, for every child to inherit instead of rebuilding:

- the synthetic task's splits for each ``task.params`` listed in the environment variable
  :data:`WARM_ENV` (set by :func:`request_warm` before the server starts): ~0.7 s per run at
  the tiny study's size;
- transformers' checkpoint conversion mapping, which a process builds on its first
  ``from_pretrained`` (~0.2-0.4 s of regex compilation).

Both are pure caches: a child computes the same values without them, only later.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

WARM_ENV = "SCALING_REPRO_WARM_SYNTHETIC_PARAMS"
"""JSON list of synthetic_mt ``task.params`` whose splits the fork server builds at start."""


def request_warm(specs: Iterable[Any]) -> None:
    """Ask the fork server, if it has not started yet, to prebuild its caches, with the synthetic
    task splits of ``specs`` (RunSpecs), before it forks any run."""
    params = {json.dumps(spec.task.params, sort_keys=True) for spec in specs if spec.task.name == "synthetic_mt"}
    os.environ[WARM_ENV] = json.dumps([json.loads(p) for p in sorted(params)])


def warm_caches(synthetic_params: Iterable[dict[str, Any]]) -> None:
    """Build the synthetic splits of each ``task.params`` and transformers' conversion mapping."""
    from scaling_repro.data.synthetic import load_synthetic

    for params in synthetic_params:
        load_synthetic(params)
    try:
        from transformers.conversion_mapping import get_checkpoint_conversion_mapping

        get_checkpoint_conversion_mapping("llama")
    except (ImportError, AttributeError):  # another transformers version: children build it themselves
        pass


if os.environ.get(WARM_ENV) is not None:  # set by request_warm for the fork server it starts
    try:
        warm_caches(json.loads(os.environ[WARM_ENV]))
    except Exception as err:  # noqa: BLE001 - a cache that failed to build must not stop the server
        log.warning("fork server: could not prebuild caches (%s); each run builds its own", err)
