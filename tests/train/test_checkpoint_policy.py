"""Checkpoints by time and on Slurm's time-limit warning (real signals), and a finished run's
step checkpoints dropped while its best weights stay."""

from __future__ import annotations

import os
import signal

import pytest

from scaling_repro.train import stop
from scaling_repro.train.checkpoint import best_checkpoint, latest_checkpoint
from scaling_repro.train.checkpoint_policy import CheckpointTimer, drop_step_checkpoints
from scaling_repro.train.loop import train
from tests.helpers.train_helpers import collate, copy_task, tiny_llama, train_config


def _train(run_dir, on_step=None, **overrides):
    return train(
        tiny_llama(),
        copy_task(32, seed=0),
        copy_task(8, seed=1),
        collate,
        run_dir,
        config=train_config(**{"max_steps": 8, "eval_every": 8, **overrides}),
        lr=1e-2,
        batch_size=8,
        seed=0,
        on_step=on_step,
    )


def _latest_step(run_dir) -> int | None:
    latest = latest_checkpoint(run_dir)
    return None if latest is None else int(latest.name.split("-")[1])


def test_timer_is_due_once_its_minutes_passed_since_the_last_checkpoint():
    now = [0.0]
    timer = CheckpointTimer(2.0, clock=lambda: now[0])
    now[0] = 119.0
    assert not timer.due()
    now[0] = 120.0
    assert timer.due()
    timer.saved()
    now[0] = 200.0
    assert not timer.due()


def test_timer_without_minutes_is_never_due():
    assert not CheckpointTimer(None, clock=lambda: 1e12).due()


def test_checkpoint_minutes_checkpoints_between_the_step_cadence(tmp_path):
    seen = []
    _train(tmp_path, on_step=lambda info: seen.append(_latest_step(tmp_path)), checkpoint_minutes=1e-6)
    # Each step's checkpoint is written before the next step: by time, not at the cadence of 8.
    assert seen == [None, 1, 2, 3, 4, 5, 6, 7]


def test_without_checkpoint_minutes_only_the_step_cadence_checkpoints(tmp_path):
    seen = []
    _train(tmp_path, on_step=lambda info: seen.append(_latest_step(tmp_path)))
    assert seen == [None] * 8 and _latest_step(tmp_path) == 8


@pytest.mark.parametrize("signum", [stop.TIME_LIMIT_SIGNAL, signal.SIGTERM])
def test_the_time_limit_warning_checkpoints_the_step_reached_and_stops(tmp_path, signum):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, stop.TIME_LIMIT_SIGNAL)}

    def signal_after_step_3(info):
        if info.step == 3:
            os.kill(os.getpid(), signum)

    try:
        stop.install_preemption_handler()
        with pytest.raises(stop.TrainingPreempted) as err:
            _train(tmp_path, on_step=signal_after_step_3)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        stop.clear_preemption()
    assert err.value.step == 3 and _latest_step(tmp_path) == 3


def test_a_finished_run_drops_its_step_checkpoints_and_keeps_the_best_weights(tmp_path):
    _train(tmp_path, eval_every=4)
    best = best_checkpoint(tmp_path)
    (tmp_path / "checkpoints" / ".tmp-step-00000009").mkdir()  # a killed write
    assert drop_step_checkpoints(tmp_path) > 0
    assert latest_checkpoint(tmp_path) is None and best is not None and best_checkpoint(tmp_path) == best
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [best.name]


def test_dropping_step_checkpoints_of_a_run_without_any_frees_nothing(tmp_path):
    assert drop_step_checkpoints(tmp_path) == 0
