"""The training loop on one CPU process: learning, best checkpoint, stopping, failures."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from scaling_repro.models.nll import predicted_tokens, token_nll_sum
from scaling_repro.train.checkpoint import best_checkpoint, checkpoint_dir, latest_checkpoint
from scaling_repro.train.loop import NonFiniteLossError, train
from scaling_repro.train.metrics_log import read_log
from tests.helpers.train_helpers import collate, copy_task, tiny_llama, train_config, wrap

TRAIN, DEV = copy_task(64, seed=0), copy_task(16, seed=1)
LR = {"full": 1e-2, "prompt": 3e-1, "lora": 3e-2}


@torch.no_grad()
def plain_dev_loss(model) -> float:
    """Token-level dev NLL computed without the trainer's machinery."""
    model.eval()
    batch = collate(DEV)
    return float(token_nll_sum(model, batch) / predicted_tokens(batch["labels"]))


@pytest.mark.parametrize("kind", ["full", "prompt", "lora"])
def test_each_method_lowers_dev_loss(tmp_path, kind):
    model = wrap(tiny_llama(), kind)
    before = plain_dev_loss(model)
    result = train(
        model,
        TRAIN,
        DEV,
        collate,
        tmp_path,
        config=train_config(max_steps=12, eval_every=6),
        lr=LR[kind],
        batch_size=8,
        seed=0,
    )
    assert result.steps == 12
    assert result.best_dev_loss < before - 0.05
    assert result.tokens_seen > 0 and result.tokens_per_second > 0
    assert result.mfu is None  # CPU: no peak FLOPs to compare against


def test_best_checkpoint_is_the_min_dev_loss_step_and_reloads(tmp_path):
    # A cosine schedule with a high LR overshoots after a few steps, so the best is not last.
    model = wrap(tiny_llama(), "lora")
    result = train(
        model,
        TRAIN,
        DEV,
        collate,
        tmp_path,
        config=train_config(max_steps=12, eval_every=2),
        lr=0.3,
        batch_size=8,
        seed=0,
    )
    evals = read_log(tmp_path, "eval")
    assert [e["step"] for e in evals] == [2, 4, 6, 8, 10, 12]
    best = min(evals, key=lambda e: e["dev_loss"])
    assert result.best_step == best["step"]
    assert result.best_dev_loss == pytest.approx(best["dev_loss"])
    assert result.best_checkpoint == best_checkpoint(tmp_path)
    assert result.best_checkpoint.name == f"best-{best['step']:08d}"
    kept = sorted(p.name for p in checkpoint_dir(tmp_path).iterdir())
    assert kept == [f"best-{best['step']:08d}", "step-00000012"]  # only the best and the latest

    fresh = wrap(tiny_llama(), "lora")
    info = result.load_best(fresh)
    assert info["step"] == best["step"]
    assert plain_dev_loss(fresh) == pytest.approx(best["dev_loss"], abs=1e-5)


def test_full_model_best_checkpoint_reloads_into_a_fresh_model(tmp_path):
    result = train(
        tiny_llama(),
        TRAIN,
        DEV,
        collate,
        tmp_path,
        config=train_config(max_steps=4, eval_every=4),
        lr=1e-2,
        batch_size=8,
        seed=0,
    )
    fresh = tiny_llama(seed=123)
    result.load_best(fresh)
    assert plain_dev_loss(fresh) == pytest.approx(result.best_dev_loss, abs=1e-5)


def test_gradient_accumulation_matches_one_full_batch(tmp_path):
    curves = []
    for micro in (None, 2):
        run_dir = tmp_path / f"micro{micro}"
        train(
            wrap(tiny_llama(), "full"),
            TRAIN,
            DEV,
            collate,
            run_dir,
            config=train_config(max_steps=4, micro_batch_size=micro),
            lr=1e-2,
            batch_size=8,
            seed=0,
        )
        curves.append([r["train_loss"] for r in read_log(run_dir, "train")])
    assert curves[0] == pytest.approx(curves[1], abs=1e-5)


def test_max_epochs_stops_before_max_steps(tmp_path):
    result = train(
        tiny_llama(),
        TRAIN,
        DEV,
        collate,
        tmp_path,
        config=train_config(max_steps=1000, max_epochs=0.5, eval_every=100),
        lr=1e-2,
        batch_size=8,
        seed=0,
    )
    assert result.steps == 4  # 0.5 x 64 examples / 8 per step
    assert result.epochs == pytest.approx(0.5)
    assert result.best_step == 4  # the last step is always evaluated


def test_min_steps_floor_overrides_max_epochs(tmp_path):
    result = train(
        tiny_llama(),
        TRAIN,
        DEV,
        collate,
        tmp_path,
        config=train_config(max_steps=1000, max_epochs=0.5, min_steps=6, eval_every=100),
        lr=1e-2,
        batch_size=8,
        seed=0,
    )
    assert result.steps == 6


def test_early_stopping_after_patience_evals_without_improvement(tmp_path):
    # LR 0 never improves on the first evaluation, so the run stops at the second one.
    result = train(
        tiny_llama(),
        TRAIN,
        DEV,
        collate,
        tmp_path,
        config=train_config(max_steps=20, eval_every=2, early_stopping_patience=1),
        lr=0.0,
        batch_size=8,
        seed=0,
    )
    assert result.stopped_early and result.steps == 4 and result.best_step == 2
    again = train(
        tiny_llama(),
        TRAIN,
        DEV,
        collate,
        tmp_path,
        config=train_config(max_steps=20, eval_every=2, early_stopping_patience=1),
        lr=0.0,
        batch_size=8,
        seed=0,
    )
    assert again.steps == 4  # a rerun of a stopped run does not train on


def test_non_finite_loss_stops_with_the_step(tmp_path):
    def poison(info):
        if info.step == 2:
            with torch.no_grad():
                next(info.model.parameters()).fill_(float("nan"))

    with pytest.raises(NonFiniteLossError, match=r"^non-finite loss at step 3$") as err:
        train(
            tiny_llama(),
            TRAIN,
            DEV,
            collate,
            tmp_path,
            config=train_config(max_steps=8),
            lr=1e-2,
            batch_size=8,
            seed=0,
            on_step=poison,
        )
    assert err.value.step == 3
    assert read_log(tmp_path, "failed")[-1]["step"] == 3


def test_batch_not_divisible_by_micro_batch_is_a_user_error(tmp_path):
    from scaling_repro.errors import UserError

    with pytest.raises(UserError, match="method.batch_size 8 is not a multiple of train.micro_batch_size 3"):
        train(
            tiny_llama(),
            TRAIN,
            DEV,
            collate,
            tmp_path,
            config=train_config(micro_batch_size=3),
            lr=1e-2,
            batch_size=8,
            seed=0,
        )


def test_jsonl_log_has_train_and_eval_lines(tmp_path):
    train(
        tiny_llama(),
        TRAIN,
        DEV,
        collate,
        tmp_path,
        config=train_config(max_steps=4, eval_every=2, log_every=2),
        lr=1e-2,
        batch_size=8,
        seed=0,
    )
    lines = read_log(tmp_path, "train")
    assert [r["step"] for r in lines] == [2, 4]
    assert all(math.isfinite(r["train_loss"]) and r["lr"] >= 0 and r["tokens_per_second"] > 0 for r in lines)
    assert [r["step"] for r in read_log(tmp_path, "eval")] == [2, 4]
    assert latest_checkpoint(tmp_path).name == "step-00000004"


def test_eval_every_epochs_replaces_eval_every(tmp_path):
    train(
        tiny_llama(),
        TRAIN,
        DEV,
        collate,
        tmp_path,
        config=train_config(max_steps=6, eval_every=100, eval_every_epochs=0.25),
        lr=1e-2,
        batch_size=8,
        seed=0,
    )
    assert [r["step"] for r in read_log(tmp_path, "eval")] == [2, 4, 6]  # 0.25 x 64 / 8 = 2 steps


def test_result_fills_the_run_record_training_fields(tmp_path):
    from scaling_repro.results import RunRecord

    result = train(
        tiny_llama(),
        TRAIN,
        DEV,
        collate,
        tmp_path,
        config=train_config(max_steps=2, eval_every=2),
        lr=1e-2,
        batch_size=8,
        seed=0,
    )
    record = RunRecord(
        run_id="x",
        name="t",
        status="ok",
        spec={},
        task="synthetic_mt",
        method="full",
        model="tiny",
        **result.record_fields(),
    )
    assert (record.steps, record.best_step, record.dev_loss) == (2, 2, result.best_dev_loss)
    assert record.hardware["world_size"] == 1 and record.hardware["device_type"] == "cpu"


def test_a_tracker_that_is_not_installed_is_a_user_error(tmp_path):
    from accelerate.utils import is_wandb_available

    from scaling_repro.errors import UserError

    if is_wandb_available():
        pytest.skip("wandb is installed here")
    with pytest.raises(UserError, match="train.trackers: 'wandb' is not installed"):
        train(
            tiny_llama(),
            TRAIN,
            DEV,
            collate,
            tmp_path,
            config=train_config(trackers=["wandb"]),
            lr=1e-2,
            batch_size=8,
            seed=0,
        )


@pytest.mark.slow
def test_importing_the_loop_leaves_logger_levels_alone():
    """Which lines of ours and of the training libraries show is the log set-up's choice
    (scaling_repro.logs), not a side effect of an import."""
    code = """
import json, logging
def levels():
    return {n: l.level for n, l in logging.root.manager.loggerDict.items() if isinstance(l, logging.Logger)}
import accelerate, accelerate.checkpointing, accelerate.utils.other, peft, transformers
before = levels()
import scaling_repro.train.loop
ours = ("scaling_repro", "accelerate", "peft", "transformers")
changed = {n: l for n, l in levels().items() if before.get(n, logging.NOTSET) != l}
print(json.dumps({n: l for n, l in changed.items() if n.split(".")[0] in ours}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.splitlines()[-1]) == {}
