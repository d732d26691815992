"""The tiny LoRA run of the crash-safety tests: crashed at a step, then rerun on its directory.

``run`` trains it (raising :class:`Crash` at ``crash_at``), ``curves`` reads its train and dev
losses; the ``uninterrupted`` fixture (tests/train/conftest.py) is the run that never crashed.
Subprocesses import this module too (``tests/train/test_resume.py`` kills one mid-checkpoint).
"""

from __future__ import annotations

from pathlib import Path

from scaling_repro.train.loop import train
from scaling_repro.train.metrics_log import read_log
from tests.helpers.train_helpers import collate, copy_task, tiny_llama, train_config, wrap

TRAIN, DEV = copy_task(48, seed=0), copy_task(8, seed=1)
# LoRA dropout draws from the torch RNG, so equality also needs the RNG state restored; a
# checkpoint (3) inside a logging interval (2) needs the interval's partial loss restored.
CONFIG = dict(max_steps=8, eval_every=4, checkpoint_every=3, log_every=2)


class Crash(Exception):
    pass


def run(run_dir: Path, crash_at: int | None = None, kind: str = "lora"):
    def hook(info):
        if info.step == crash_at:
            raise Crash(info.step)

    model = wrap(tiny_llama(), kind, dropout=0.1)
    return train(
        model,
        TRAIN,
        DEV,
        collate,
        run_dir,
        config=train_config(**CONFIG),
        lr=3e-2,
        batch_size=6,
        seed=0,
        on_step=hook if crash_at else None,
    )


def curves(run_dir: Path) -> tuple[list[float], list[float]]:
    return ([r["train_loss"] for r in read_log(run_dir, "train")], [r["dev_loss"] for r in read_log(run_dir, "eval")])
