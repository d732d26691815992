"""DeepSpeed ZeRO-3 runs build their pretrained model partitioned over the ranks from the start
(transformers' HfDeepSpeedConfig -> deepspeed.zero.Init), and train exactly as from a model
built whole; the parameter counts stay those of the whole model."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import pytest
import torch

from scaling_repro.methods import count_trainable
from scaling_repro.models.configs import count_parameters
from scaling_repro.train import distributed
from scaling_repro.train.distributed import construction_config, deepspeed_available, load_deepspeed_config
from scaling_repro.train.throughput import matmul_params
from tests.helpers.factories import build_run_spec
from tests.helpers.models_testing import make_tokenizer, tiny_model
from tests.helpers.paths import HELPERS, pythonpath

WORKER = HELPERS / "zero3_construction_worker.py"
DEEPSPEED, DEEPSPEED_REASON = deepspeed_available()
needs_deepspeed = pytest.mark.skipif(not DEEPSPEED, reason=f"ZeRO-3 construction needs deepspeed: {DEEPSPEED_REASON}")


def as_partitioned(model: torch.nn.Module) -> torch.nn.Module:
    """Make ``model`` look like ZeRO-3 holds it: empty local data, the whole size in ``ds_numel``."""
    for param in model.parameters():
        param.ds_numel = param.numel()
        param.data = torch.empty(0, dtype=param.dtype)
    return model


def test_parameter_counts_of_a_partitioned_model_are_those_of_the_whole_model():
    whole = tiny_model()
    expected = (count_parameters(whole), count_trainable(whole), matmul_params(whole))
    partitioned = as_partitioned(tiny_model())
    assert (count_parameters(partitioned), count_trainable(partitioned), matmul_params(partitioned)) == expected
    assert expected[0].total > 0


def test_the_construction_config_fills_what_zero_init_reads_and_keeps_the_rest():
    config = construction_config(load_deepspeed_config("zero3"), precision="fp32")
    assert config["bf16"]["enabled"] is False  # the parameters are made in the training dtype
    assert (config["train_micro_batch_size_per_gpu"], config["gradient_accumulation_steps"]) == (1, 1)
    assert config["zero_optimization"]["stage"] == 3
    assert config["zero_optimization"]["stage3_prefetch_bucket_size"] == "auto"  # DeepSpeed's default then


@pytest.mark.parametrize("deepspeed", [None, "zero2"])
def test_runs_other_than_zero3_build_their_model_whole(deepspeed):
    with distributed.sharded_construction(deepspeed) as sharded:
        assert sharded is False


def _prepare_sharding(monkeypatch, tmp_path, init: str, for_training: bool) -> str | None:
    """Return the DeepSpeed config ``pipeline.prepare`` asks ``sharded_construction`` for."""
    from scaling_repro import pipeline

    asked = []

    class Asked(Exception):
        pass

    @contextlib.contextmanager
    def recording(deepspeed, precision="auto"):
        asked.append(deepspeed)
        raise Asked  # no model is built
        yield

    monkeypatch.setattr(distributed, "sharded_construction", recording)
    monkeypatch.setattr("scaling_repro.data.tasks.load_task", lambda cfg, zero_shot=False: None)
    model = {"name": "tiny-xs", "init": "random", "tokenizer": "tok"} if init == "random" else {"name": "some/model"}
    spec = build_run_spec(
        name="z3",
        output_dir=str(tmp_path),
        model=model,
        method={"kind": "full", "lr": 1e-3, "batch_size": 16},
        train={"deepspeed": "zero3"},
    )
    with pytest.raises(Asked):
        pipeline.prepare(spec, for_training=for_training)
    return asked[0]


def test_training_a_pretrained_model_under_zero3_builds_it_partitioned(monkeypatch, tmp_path):
    assert _prepare_sharding(monkeypatch, tmp_path, "pretrained", for_training=True) == "zero3"


def test_random_init_is_built_whole_so_zero3_does_not_change_the_initial_weights(monkeypatch, tmp_path):
    assert _prepare_sharding(monkeypatch, tmp_path, "random", for_training=True) is None


def test_reevaluation_builds_the_model_whole(monkeypatch, tmp_path):
    assert _prepare_sharding(monkeypatch, tmp_path, "pretrained", for_training=False) is None


@needs_deepspeed
def test_zero3_partitions_pretrained_weights_while_loading_and_trains_as_from_a_whole_model(tmp_path):
    base = tmp_path / "base"
    tiny_model("tiny-xs", 64, seed=0).save_pretrained(base)
    make_tokenizer(64).save_pretrained(base)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": pythonpath(),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(WORKER),
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "zero3_construction.json").read_text())
    for kind in ("full", "lora", "prompt"):
        sharded, whole = got[f"{kind}-sharded"], got[f"{kind}-whole"]
        # Each of the 2 ranks held half of the base model's weights, never all of them.
        assert sharded["active"] and sharded["held"]["partitioned"]
        assert sharded["held"]["local"] * 2 == sharded["held"]["whole"] == whole["held"]["local"]
        assert not whole["held"]["partitioned"]
        assert [sharded[k] for k in ("model_params", "trainable", "total")] == [
            whole[k] for k in ("model_params", "trainable", "total")
        ]
        assert sharded["train"] == pytest.approx(whole["train"], abs=1e-6)
        assert sharded["dev"] == pytest.approx(whole["dev"], abs=1e-6)
