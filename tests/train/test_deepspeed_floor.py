"""DeepSpeed below 0.16.4 cannot load its own checkpoints: it counts as missing, and a run that
needs DeepSpeed without it says how to install it."""

from __future__ import annotations

import pytest

from scaling_repro.errors import UserError
from scaling_repro.train import distributed
from scaling_repro.train.distributed import DEEPSPEED_INSTALL, deepspeed_version_ok, make_accelerator


@pytest.mark.parametrize(("version", "ok"), [("0.15.4", False), ("0.16.3", False), ("0.16.4", True), ("0.19.8", True)])
def test_deepspeed_versions_from_the_floor_on_are_accepted(version, ok):
    assert deepspeed_version_ok(version) is ok


def test_a_missing_deepspeed_names_the_install_command(monkeypatch):
    monkeypatch.setattr(distributed, "deepspeed_available", lambda: (False, "deepspeed is not importable"))
    with pytest.raises(UserError, match="pip install --no-build-isolation 'deepspeed>=0.16.4'"):
        make_accelerator(deepspeed_config={"zero_optimization": {"stage": 2}})
    assert DEEPSPEED_INSTALL == "pip install --no-build-isolation 'deepspeed>=0.16.4'"
