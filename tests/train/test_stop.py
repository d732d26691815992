"""Stopping in-process training from outside, between steps (a sweep worker that lost its claim)."""

from __future__ import annotations

import pytest

from scaling_repro.train import stop
from scaling_repro.train.checkpoint import latest_checkpoint
from scaling_repro.train.loop import train
from scaling_repro.train.metrics_log import read_log
from tests.helpers.train_helpers import collate, copy_task, tiny_llama, train_config


def test_training_stops_before_the_next_step_once_asked_and_saves_nothing_more(tmp_path):
    steps = []
    with stop.stop_when(lambda: len(steps) >= 3), pytest.raises(stop.TrainingStopped) as err:
        train(
            tiny_llama(),
            copy_task(32, seed=0),
            copy_task(8, seed=1),
            collate,
            tmp_path,
            config=train_config(max_steps=8, eval_every=2),
            lr=1e-2,
            batch_size=8,
            seed=0,
            on_step=lambda info: steps.append(info.step),
        )
    assert err.value.step == 3 and steps == [1, 2, 3]
    assert max(line["step"] for line in read_log(tmp_path, "train")) == 3
    assert int(latest_checkpoint(tmp_path).name.split("-")[1]) == 2  # stopped before step 4 and its checkpoint
    assert not stop.requested()  # the request ends with its block


def _train(run_dir, on_step=None):
    return train(
        tiny_llama(),
        copy_task(32, seed=0),
        copy_task(8, seed=1),
        collate,
        run_dir,
        config=train_config(max_steps=8, eval_every=4),
        lr=1e-2,
        batch_size=8,
        seed=0,
        on_step=on_step,
    )


def test_preemption_saves_the_step_reached_and_a_rerun_ends_as_the_uninterrupted_run(tmp_path):
    uninterrupted = _train(tmp_path / "once")

    def preempt_after_step_3(info):
        if info.step == 3:
            stop.request_preemption()

    try:
        with pytest.raises(stop.TrainingPreempted) as err:
            _train(tmp_path / "twice", on_step=preempt_after_step_3)
    finally:
        stop.clear_preemption()
    assert err.value.step == 3
    assert int(latest_checkpoint(tmp_path / "twice").name.split("-")[1]) == 3  # not a multiple of eval_every
    resumed = _train(tmp_path / "twice")
    assert resumed.steps == uninterrupted.steps and resumed.best_dev_loss == uninterrupted.best_dev_loss
    assert [line["train_loss"] for line in read_log(tmp_path / "twice", "train")] == [
        line["train_loss"] for line in read_log(tmp_path / "once", "train")
    ]


@pytest.mark.slow
def test_sigterm_to_scaling_repro_run_checkpoints_and_exits_as_interrupted(tmp_path):
    import json
    import signal
    import subprocess
    import sys
    import time

    from scaling_repro.config.sweep import load_runs
    from scaling_repro.data.synthetic import pretraining_corpus
    from scaling_repro.models.tokenizer import train_tokenizer

    train_tokenizer(pretraining_corpus(1000, parallel_share=0.3), 300, tmp_path / "tok")
    recipe = tmp_path / "run.yaml"
    recipe.write_text(f"""
name: preempt
output_dir: {json.dumps(str(tmp_path / "runs"))}
task: {{name: synthetic_mt, train_examples: 64, dev_examples: 8, test_examples: 8}}
model: {{name: tiny-xs, init: random, tokenizer: {json.dumps(str(tmp_path / "tok"))}}}
method: {{kind: full, lr: 3.0e-3, batch_size: 8}}
train: {{optimizer: adamw, max_steps: 100000, eval_every: 100000, log_every: 1, threads: 1}}
eval: {{generate: false}}
""")
    spec = load_runs(recipe).runs[0]
    child = subprocess.Popen(
        [sys.executable, "-m", "scaling_repro", "run", str(recipe)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = spec.run_dir / "train_log.jsonl"
    deadline = time.monotonic() + 120
    while not (log.is_file() and log.read_text().count('"train"') >= 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == stop.EXIT_PREEMPTED, stderr[-2000:]
    assert "preempted (SIGTERM/USR2)" in stderr
    assert latest_checkpoint(spec.run_dir) is not None and not (spec.run_dir / "result.json").exists()
