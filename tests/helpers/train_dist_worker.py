"""Worker of the distributed / DeepSpeed tests: ``python train_dist_worker.py MODE OUT_DIR``.

MODE ``ddp`` (under torchrun): checks that gradients are averaged over >1 processes, then
trains the tiny model and writes its curves. MODE ``ddp_resume`` (under torchrun): LoRA runs,
one of them crashed and resumed, writing both curves. MODE ``zero``: DeepSpeed ZeRO-2 / ZeRO-3 runs on
one CPU process (LoRA resume, full and prompt tuning), writing what each measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.helpers
from scaling_repro.train.distributed import make_accelerator  # noqa: E402
from scaling_repro.train.loop import train  # noqa: E402
from scaling_repro.train.metrics_log import read_log  # noqa: E402
from tests.helpers.train_helpers import collate, copy_task, tiny_llama, train_config, wrap  # noqa: E402

TRAIN, DEV = copy_task(48, seed=0), copy_task(8, seed=1)
DDP_RUN = dict(config=dict(max_steps=4, eval_every=2, log_every=1, micro_batch_size=4), lr=1e-2, batch_size=8)


def curves(run_dir: Path) -> dict:
    return {
        "train": [r["train_loss"] for r in read_log(run_dir, "train")],
        "dev": [r["dev_loss"] for r in read_log(run_dir, "eval")],
    }


def gradient_average() -> dict:
    """Each rank backpropagates (rank + 1) * w; averaged gradients equal mean(rank + 1)."""
    accelerator = make_accelerator()
    layer = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.ones_(layer.weight)
    layer = accelerator.prepare(layer)
    accelerator.backward((accelerator.process_index + 1) * layer(torch.ones(1, 1)).sum())
    return {
        "world_size": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type),
        "grad": layer.module.weight.grad.item() if hasattr(layer, "module") else layer.weight.grad.item(),
    }


def ddp(out: Path) -> None:
    info = gradient_average()
    run_dir = out / "run"
    result = train(
        tiny_llama(),
        TRAIN,
        DEV,
        collate,
        run_dir,
        config=train_config(**DDP_RUN["config"]),
        lr=DDP_RUN["lr"],
        batch_size=DDP_RUN["batch_size"],
        seed=0,
    )
    if torch.distributed.get_rank() == 0:
        info.update(curves(run_dir), world=result.world_size, best_step=result.best_step)
        (out / "ddp.json").write_text(json.dumps(info))


def ddp_resume(out: Path) -> None:
    """Two-process LoRA with dropout: an uninterrupted run, and one crashed at step 3 and resumed."""
    config = train_config(max_steps=6, eval_every=2, checkpoint_every=2, log_every=1, micro_batch_size=2)

    def run(name: str, crash_at: int | None = None):
        def hook(info):
            if info.step == crash_at:
                raise RuntimeError("crash")

        model = wrap(tiny_llama(), "lora", dropout=0.1)
        try:
            return train(
                model,
                TRAIN,
                DEV,
                collate,
                out / name,
                config=config,
                lr=3e-2,
                batch_size=8,
                seed=0,
                on_step=hook if crash_at else None,
            )
        except RuntimeError as err:
            if str(err) != "crash":
                raise
            return None

    run("whole")
    run("resumed", crash_at=3)
    resumed = run("resumed")
    if torch.distributed.get_rank() == 0:
        report = {
            "whole": curves(out / "whole"),
            "resumed": curves(out / "resumed"),
            "resumed_from": resumed.resumed_from_step,
        }
        (out / "ddp_resume.json").write_text(json.dumps(report))


def zero(out: Path) -> None:
    report: dict = {}
    config = dict(max_steps=4, eval_every=2, checkpoint_every=2, log_every=1, micro_batch_size=2)

    def run(name, kind, stage, crash_at=None, steps=4, optimizer="adafactor"):
        def hook(info):
            if info.step == crash_at:
                raise RuntimeError("crash")

        model = wrap(tiny_llama(), kind)
        cfg = train_config(**{**config, "max_steps": steps, "deepspeed": f"zero{stage}", "optimizer": optimizer})
        try:
            result = train(
                model,
                TRAIN,
                DEV,
                collate,
                out / name,
                config=cfg,
                lr=3e-2,
                batch_size=4,
                seed=0,
                on_step=hook if crash_at else None,
            )
        except RuntimeError as err:
            if str(err) != "crash":
                raise
            return None
        from scaling_repro.train.checkpoint import saved_numel

        fresh = wrap(tiny_llama(seed=1), kind)
        result.load_best(fresh)
        report[name] = {
            **curves(out / name),
            "resumed_from": result.resumed_from_step,
            "best_step": result.best_step,
            "best_numel": saved_numel(result.best_checkpoint),
            "trainable": sum(p.numel() for p in fresh.parameters() if p.requires_grad),
        }

    run("zero2_lora_adamw", "lora", 2, optimizer="adamw")
    run("zero2_lora", "lora", 2)
    run("zero2_lora_resumed", "lora", 2, crash_at=3)
    run("zero2_lora_resumed", "lora", 2)
    run("zero3_full", "full", 3, steps=2)
    run("zero3_prompt", "prompt", 3, steps=2)
    (out / "zero.json").write_text(json.dumps(report))


if __name__ == "__main__":
    mode, out_dir = sys.argv[1], Path(sys.argv[2])
    {"ddp": ddp, "ddp_resume": ddp_resume, "zero": zero}[mode](out_dir)
