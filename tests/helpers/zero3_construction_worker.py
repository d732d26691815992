"""Worker of the ZeRO-3 construction test: ``torchrun ... zero3_construction_worker.py OUT_DIR``.

Loads the tiny pretrained checkpoint ``OUT_DIR/base`` for FMT, LoRA and prompt tuning (text
init), once partitioned from the start (``sharded_construction``) and once whole (after a ZeRO-3
run in this process, whose DeepSpeed config Accelerate keeps set), trains each under ZeRO-3
and writes to ``OUT_DIR/zero3_construction.json`` (rank 0) what each rank held after
construction and the loss curves.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.helpers
from scaling_repro.config.recipe import FullMethod, LoraMethod, ModelConfig, PromptMethod  # noqa: E402
from scaling_repro.methods import apply_method  # noqa: E402
from scaling_repro.models.load import load_base_model  # noqa: E402
from scaling_repro.train.distributed import sharded_construction  # noqa: E402
from scaling_repro.train.loop import train  # noqa: E402
from scaling_repro.train.metrics_log import read_log  # noqa: E402
from tests.helpers.train_helpers import collate, copy_task, train_config  # noqa: E402

TRAIN, DEV = copy_task(32, seed=0), copy_task(8, seed=1)
METHODS = {
    "full": FullMethod(kind="full", lr=1e-2, batch_size=4),
    "lora": LoraMethod(kind="lora", lr=1e-2, batch_size=4, rank=2),
    "prompt": PromptMethod(kind="prompt", lr=1e-2, batch_size=4, prompt_length=3, init="text", init_text="w1 w2"),
}


def held(model: torch.nn.Module) -> dict:
    """What this rank holds of the base model's parameters."""
    params = [p for n, p in model.named_parameters() if "lora_" not in n and "prompt_encoder" not in n]
    return {
        "partitioned": all(hasattr(p, "ds_id") and p.numel() == 0 for p in params),
        "local": sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in params),
        "whole": sum(getattr(p, "ds_numel", p.numel()) for p in params),
    }


def main(out: Path) -> None:
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    report: dict = {}
    config = train_config(
        max_steps=3, eval_every=3, log_every=1, micro_batch_size=1, optimizer="adamw", deepspeed="zero3"
    )
    for kind, method in METHODS.items():
        for sharded in (True, False):
            with sharded_construction("zero3" if sharded else None) as active:
                base = load_base_model(ModelConfig(name=str(out / "base")))
                wrapped = apply_method(base.model, method, seed=0, tokenizer=base.tokenizer)
            name = f"{kind}-{'sharded' if sharded else 'whole'}"
            report[name] = {
                "active": active,
                "held": held(wrapped.model),
                "model_params": base.model_params,
                "trainable": wrapped.trainable_params,
                "total": wrapped.total_params,
            }
            run_dir = out / name
            train(wrapped.model, TRAIN, DEV, collate, run_dir, config=config, lr=method.lr, batch_size=4, seed=0)
            report[name]["train"] = [r["train_loss"] for r in read_log(run_dir, "train")]
            report[name]["dev"] = [r["dev_loss"] for r in read_log(run_dir, "eval")]
    if rank == 0:
        (out / "zero3_construction.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
