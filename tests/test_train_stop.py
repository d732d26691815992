"""Stopping in-process training from outside, between steps (a sweep worker that lost its claim)."""

from __future__ import annotations

import pytest

from scaling_repro.train import stop
from scaling_repro.train.checkpoint import latest_checkpoint
from scaling_repro.train.loop import train
from scaling_repro.train.metrics_log import read_log
from train_helpers import collate, copy_task, tiny_llama, train_config


def test_training_stops_before_the_next_step_once_asked_and_saves_nothing_more(tmp_path):
    steps = []
    with stop.stop_when(lambda: len(steps) >= 3), pytest.raises(stop.TrainingStopped) as err:
        train(tiny_llama(), copy_task(32, seed=0), copy_task(8, seed=1), collate, tmp_path,
              config=train_config(max_steps=8, eval_every=2), lr=1e-2, batch_size=8, seed=0,
              on_step=lambda info: steps.append(info.step))
    assert err.value.step == 3 and steps == [1, 2, 3]
    assert max(line["step"] for line in read_log(tmp_path, "train")) == 3
    assert int(latest_checkpoint(tmp_path).name.split("-")[1]) == 2  # stopped before step 4 and its checkpoint
    assert not stop.requested()  # the request ends with its block
