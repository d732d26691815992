"""Execution settings change how a run executes, not what it computes: a compiled model and
the TF32 switch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from scaling_repro.train.loop import train
from scaling_repro.train.setup import set_backend_tf32, set_tf32
from tests.helpers.train_helpers import collate, copy_task, tiny_llama, train_config

TRAIN, DEV = copy_task(64, seed=0), copy_task(16, seed=1)


@pytest.mark.slow
def test_compiled_model_trains_as_the_plain_one(tmp_path, monkeypatch):
    import accelerate.utils

    plugin, made = accelerate.utils.TorchDynamoPlugin, []

    def eager_plugin(**kwargs):  # dynamo's graph capture without inductor's C++ build: seconds
        made.append(kwargs)
        return plugin(**{**kwargs, "backend": "eager"})

    monkeypatch.setattr(accelerate.utils, "TorchDynamoPlugin", eager_plugin)
    compiled = train(
        tiny_llama(),
        TRAIN,
        DEV,
        collate,
        tmp_path / "compiled",
        config=train_config(max_steps=4, compile=True),
        lr=1e-2,
        batch_size=8,
        seed=0,
    )
    plain = train(
        tiny_llama(),
        TRAIN,
        DEV,
        collate,
        tmp_path / "plain",
        config=train_config(max_steps=4),
        lr=1e-2,
        batch_size=8,
        seed=0,
    )
    assert made == [{"backend": "inductor", "dynamic": True}]
    assert compiled.best_dev_loss == pytest.approx(plain.best_dev_loss, rel=1e-6)
    assert compiled.best_checkpoint is not None and compiled.best_checkpoint.is_dir()


@pytest.mark.skipif(not hasattr(torch.backends.cuda.matmul, "fp32_precision"), reason="torch < 2.9: allow_tf32 API")
@pytest.mark.parametrize(("enabled", "precision"), [(True, "tf32"), (False, "ieee")])
def test_tf32_setting_sets_the_fp32_matmul_precision(enabled, precision):
    before = torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision
    try:
        set_tf32(enabled)
        assert torch.backends.cuda.matmul.fp32_precision == precision
        assert torch.backends.cudnn.conv.fp32_precision == precision
    finally:
        torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = before


@pytest.mark.parametrize("enabled", [True, False])
def test_tf32_setting_falls_back_to_allow_tf32_where_torch_has_no_fp32_precision(enabled):
    # torch < 2.9: the backend modules know only allow_tf32.
    matmul, cudnn = SimpleNamespace(allow_tf32=not enabled), SimpleNamespace(allow_tf32=not enabled)
    set_backend_tf32(matmul, cudnn, enabled)
    assert matmul.allow_tf32 is enabled and cudnn.allow_tf32 is enabled
    assert not hasattr(matmul, "fp32_precision")
