"""Parts of the trainer: optimizer settings, schedules, data order, FLOPs, DeepSpeed config checks."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from scaling_repro.errors import UserError
from scaling_repro.train.batching import ExampleStream, rank_micro_batches
from scaling_repro.train.distributed import DEEPSPEED_CONFIGS_DIR, load_deepspeed_config
from scaling_repro.train.optim import build_optimizer, build_schedule
from scaling_repro.train.steps import planned_steps
from scaling_repro.train.throughput import attention_shape, flops_per_token, matmul_params, mfu, peak_bf16_flops
from tests.helpers.train_helpers import tiny_llama, wrap


def test_adafactor_uses_the_papers_fixed_lr_settings():
    from transformers.optimization import Adafactor

    optimizer = build_optimizer(torch.nn.Linear(4, 4).parameters(), "adafactor", lr=1e-3)
    assert isinstance(optimizer, Adafactor)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["scale_parameter"], group["relative_step"], group["warmup_init"]) == (
        1e-3,
        False,
        False,
        False,
    )


def test_optimizer_only_gets_trainable_parameters():
    model = wrap(tiny_llama(), "lora")
    optimizer = build_optimizer(model.parameters(), "adamw", lr=1e-2)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for g in optimizer.param_groups for p in g["params"]) == trainable


def _lrs(kind, total, warmup=0, floor=0.0):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    schedule = build_schedule(optimizer, kind, total, warmup, floor)
    lrs = []
    for _ in range(total):
        lrs.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    return lrs + [schedule.get_last_lr()[0]]


def test_cosine_warms_up_then_decays_to_the_floor():
    lrs = _lrs("cosine", total=10, warmup=2, floor=0.1)
    assert lrs[:3] == pytest.approx([0.0, 1.0, 2.0])
    assert lrs[-1] == pytest.approx(0.2)
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:]))


def test_constant_schedule_holds_the_lr_after_warmup():
    assert _lrs("constant", total=5, warmup=1)[1:] == pytest.approx([2.0] * 5)


@pytest.mark.parametrize(
    "examples, batch, max_steps, max_epochs, min_steps, expected",
    [
        (1000, 100, 200_000, 100, 0, 1000),  # 100 epochs come first
        (1000, 100, 50, 100, 0, 50),  # max steps come first
        (10, 100, 200_000, 2, 0, 1),  # fewer examples than a batch
        (1000, 100, 200_000, 1, 30, 30),  # the min_steps floor
    ],
)
def test_planned_steps_is_max_steps_or_max_epochs_whichever_first(
    examples, batch, max_steps, max_epochs, min_steps, expected
):
    assert planned_steps(examples, batch, max_steps, max_epochs, min_steps) == expected


def test_example_stream_is_a_fresh_permutation_per_epoch_and_deterministic():
    stream = ExampleStream(5, seed=3)
    first = stream.take(0, 10)
    assert sorted(first[:5]) == sorted(first[5:]) == list(range(5))
    assert first[:5] != first[5:]
    assert ExampleStream(5, seed=3).take(3, 4) == first[3:7]  # a resume reads the same positions


def test_micro_batches_of_all_ranks_partition_the_global_batch():
    batch = list(range(12))
    per_rank = [rank_micro_batches(batch, 2, 3, r) for r in range(3)]
    assert all(len(m) == 2 for m in per_rank)  # 2 accumulation steps each
    assert sorted(i for m in per_rank for micro in m for i in micro) == batch
    assert rank_micro_batches(batch, 2, 1, 0) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]]


def test_flops_per_token_is_6n_plus_attention_when_all_is_trainable():
    model = tiny_llama()  # d 32, 2 layers, 4 heads x 8, tied 64-token head
    total, trainable = matmul_params(model)
    d, ffn, layers, vocab, kv = 32, 64, 2, 64, 8
    per_layer = d * d + 2 * d * kv + d * d + 3 * d * ffn  # q, k+v (one head), o, gate/up/down
    assert total == trainable == layers * per_layer + vocab * d
    assert attention_shape(model.config) == (2, 32)
    assert flops_per_token(total, trainable, 2, 32, seq_len=10) == 6 * total + 12 * 2 * 32 * 10


def test_frozen_weights_skip_the_weight_gradient_flops():
    total, trainable = matmul_params(wrap(tiny_llama(), "lora"))
    assert 0 < trainable < total
    assert flops_per_token(total, trainable, 0, 0, 0) == 4 * total + 2 * trainable


def test_mfu_needs_a_known_peak():
    assert mfu(1000.0, 1e9, None) is None
    assert mfu(1000.0, 1e9, 1e13) == pytest.approx(0.1)
    if not torch.cuda.is_available():
        assert peak_bf16_flops("cpu") is None


def test_shipped_deepspeed_configs_pass_the_checks():
    names = sorted(p.stem for p in DEEPSPEED_CONFIGS_DIR.glob("*.json"))
    assert names == ["zero2", "zero3", "zero3_offload"]
    for name in names:
        config = load_deepspeed_config(name)
        assert "optimizer" not in config and "scheduler" not in config


@pytest.mark.parametrize(
    "change, message",
    [
        ({"optimizer": {"type": "AdamW", "params": {"lr": 1e-4}}}, "declares 'optimizer'"),
        ({"scheduler": {"type": "WarmupLR"}}, "declares 'scheduler'"),
        ({"zero_force_ds_cpu_optimizer": True}, "DeepSpeedCPUAdam"),
        ({"zero_optimization": {"stage": 3}}, "stage3_gather_16bit_weights_on_model_save"),
    ],
)
def test_deepspeed_configs_that_would_replace_our_optimizer_or_shard_saves_are_refused(tmp_path, change, message):
    config = json.loads((DEEPSPEED_CONFIGS_DIR / "zero3_offload.json").read_text())
    config.update(change)
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(config))
    with pytest.raises(UserError, match=message):
        load_deepspeed_config(str(path))


def test_missing_deepspeed_config_lists_the_shipped_ones():
    with pytest.raises(UserError, match="shipped configs: zero2, zero3, zero3_offload"):
        load_deepspeed_config("zero4")


class _ShardedSaveAccelerator:
    """Stands in for ZeRO-3 without gathering: the state dict holds empty shards."""

    is_main_process = True
    distributed_type = "DistributedType.DEEPSPEED"
    state = SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=3))

    def get_state_dict(self, model):
        return {k: torch.empty(0) for k in model.state_dict()}

    def unwrap_model(self, model):
        return model

    def wait_for_everyone(self):
        pass


def test_a_best_checkpoint_smaller_than_the_model_is_an_error(tmp_path):
    from scaling_repro.train.checkpoint import save_best

    with pytest.raises(RuntimeError, match="holds 0 weight elements but the model has"):
        save_best(_ShardedSaveAccelerator(), tiny_llama(), step=3, dev_loss=1.0, run_dir=tmp_path)
    assert not list(tmp_path.rglob("*.safetensors"))


@pytest.mark.parametrize("kind", ["full", "prompt", "lora"])
def test_logits_only_from_the_first_scored_position_give_the_same_loss(kind):
    from scaling_repro.models.nll import supports_logits_to_keep, token_nll_sum
    from tests.helpers.train_helpers import collate, copy_task

    model = wrap(tiny_llama(), kind).eval()
    batch = collate(copy_task(6, seed=4))
    assert supports_logits_to_keep(model)
    with torch.no_grad():
        full, kept = token_nll_sum(model, batch, False), token_nll_sum(model, batch, True)
    assert float(kept) == pytest.approx(float(full), rel=1e-6)
