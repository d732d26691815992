"""A run's record says which optimizer mathematics ran: the paper's factored Adafactor unsharded,
an unfactored per-partition one under ZeRO; records written before the field still read."""

from __future__ import annotations

import pytest

from scaling_repro.results.record import RunRecord
from scaling_repro.train.distributed import optimizer_mathematics
from scaling_repro.train.loop import train
from tests.helpers.train_helpers import collate, copy_task, tiny_llama, train_config

UNFACTORED = "adafactor (unfactored, per-partition clipping under"


@pytest.mark.parametrize(
    ("kind", "deepspeed", "math"),
    [
        ("adafactor", None, "adafactor (factored)"),
        ("adafactor", {"zero_optimization": {"stage": 2}}, f"{UNFACTORED} ZeRO-2)"),
        ("adafactor", {"zero_optimization": {"stage": 3}}, f"{UNFACTORED} ZeRO-3)"),
        ("adamw", {"zero_optimization": {"stage": 3}}, "adamw"),
        ("adamw", None, "adamw"),
    ],
)
def test_optimizer_mathematics_names_factoring_and_sharding(kind, deepspeed, math):
    assert optimizer_mathematics(kind, deepspeed) == math


def test_an_unsharded_adafactor_run_records_factored_adafactor(tmp_path):
    result = train(
        tiny_llama(),
        copy_task(16, seed=0),
        copy_task(8, seed=1),
        collate,
        tmp_path,
        config=train_config(max_steps=2, eval_every=2, optimizer="adafactor"),
        lr=1e-2,
        batch_size=8,
        seed=0,
    )
    assert result.record_fields()["optimizer"] == "adafactor (factored)"


def test_a_record_without_the_optimizer_field_still_reads():
    record = RunRecord(run_id="abc", name="n", status="ok", spec={}, task="t", method="full", model="m")
    old = record.model_dump(mode="json")
    del old["optimizer"]
    assert RunRecord.model_validate(old).optimizer is None
