"""Trainer throughput benchmarks (figures to print, not timed tests).

CPU (always): tokens/s of our Accelerate loop vs a plain ``transformers.Trainer`` on the same
tiny model, data, batch, optimizer (Adafactor) and schedule, in one process; target ratio >= 1.0.
GPU (only with CUDA): the paper's 1B FMT step in bf16 (Adafactor, sequence 512) with its MFU,
target >= 45%, and a few ZeRO-2 and ZeRO-3 steps that must run (DeepSpeed installed).

    OMP_NUM_THREADS=1 python scripts/bench_train.py                 # CPU part
    python scripts/bench_train.py --gpu-micro-batch 8 --gpu-steps 20
"""

from __future__ import annotations

import argparse
import functools
import logging
import random
import tempfile
import time
from pathlib import Path

import torch

from scaling_repro.data.collate import EncodedExample, collate_for_lm


def make_data(n: int, vocab: int, min_len: int, max_len: int, seed: int = 0) -> list[EncodedExample]:
    """Random prompt/target sequences (the loss is on the second half)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(min_len, max_len)
        ids = [rng.randrange(4, vocab) for _ in range(length)]
        half = length // 2
        out.append(EncodedExample(ids, [-100] * half + ids[half:], half))
    return out


collate = functools.partial(collate_for_lm, pad_id=0)


def build(config_name: str, vocab: int, seed: int = 0):
    from scaling_repro.models.configs import build_config, build_model

    torch.manual_seed(seed)
    return build_model(build_config(config_name, vocab, bos_token_id=1, eos_token_id=2, pad_token_id=0))


def tokens_in(data: list[EncodedExample], steps: int, batch: int) -> int:
    """Non-pad tokens of ``steps`` batches of the stream (both loops see the same count)."""
    return sum(len(data[i % len(data)].input_ids) for i in range(steps * batch))


def run_ours(model, data, steps: int, batch: int, micro: int | None, run_dir: Path, **train_overrides) -> dict:
    from scaling_repro.config.recipe import TrainConfig
    from scaling_repro.train.loop import train

    config = TrainConfig(max_steps=steps, max_epochs=1e6, eval_every=10**9, log_every=10**9, grad_clip=1.0,
                         micro_batch_size=micro, **train_overrides)
    dev = data[:micro or batch]
    start = time.perf_counter()
    result = train(model, data, dev, collate, run_dir, config=config, lr=1e-3, batch_size=batch, seed=0)
    wall = time.perf_counter() - start
    return {"wall": wall, "tokens": result.tokens_seen, "step_tokens_per_s": result.tokens_per_second,
            "mfu": result.mfu}


def run_hf_trainer(model, data, steps: int, batch: int, run_dir: Path) -> dict:
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=str(run_dir), per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-3,
        optim="adafactor", lr_scheduler_type="cosine", max_grad_norm=1.0, save_strategy="no",
        eval_strategy="no", report_to="none", disable_tqdm=True, use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available(), remove_unused_columns=False, logging_steps=10**9, seed=0,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    return {"wall": wall, "tokens": tokens_in(data, steps, batch)}


def cpu_bench(args) -> None:
    data = make_data(4096, vocab=512, min_len=args.min_len, max_len=args.max_len)
    print(f"CPU: {args.model}, batch {args.batch}, {args.steps} steps, sequences {args.min_len}-{args.max_len} "
          f"tokens, torch threads {torch.get_num_threads()}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, fn in (("ours", run_ours), ("hf_trainer", run_hf_trainer)):
                model = build(args.model, 512)
                if name == "ours":
                    got = fn(model, data, args.steps, args.batch, None, Path(tmp) / f"ours{repeat}")
                else:
                    got = fn(model, data, args.steps, args.batch, Path(tmp) / f"hf{repeat}")
                tps = got["tokens"] / got["wall"]
                results.setdefault(name, []).append(tps)
                extra = f", steps only {got['step_tokens_per_s']:.0f}" if "step_tokens_per_s" in got else ""
                print(f"  {name:10s} run {repeat}: {tps:8.0f} tokens/s end to end ({got['wall']:.2f}s{extra})")
    best = {k: max(v) for k, v in results.items()}
    print(f"CPU ratio ours / transformers.Trainer (best of {args.repeats}): {best['ours'] / best['hf_trainer']:.3f}")


def gpu_bench(args) -> None:
    from scaling_repro.train.distributed import deepspeed_available

    print(f"GPU: {torch.cuda.get_device_name()}")
    data = make_data(4096, vocab=32_000, min_len=512, max_len=512)
    with tempfile.TemporaryDirectory() as tmp:
        model = build("paper-1b", 32_000)
        got = run_ours(model, data, args.gpu_steps, args.gpu_micro_batch * args.gpu_accum, args.gpu_micro_batch,
                       Path(tmp) / "fmt1b", precision="bf16", gradient_checkpointing=args.checkpointing)
        print(f"  paper-1b FMT bf16 Adafactor seq 512: {got['step_tokens_per_s']:.0f} tokens/s/GPU, "
              f"MFU {got['mfu']:.1%} (target >= 45%)")
        del model
        torch.cuda.empty_cache()
        ok, reason = deepspeed_available()
        if not ok:
            print(f"  ZeRO steps skipped: {reason}")
            return
        for stage in ("zero2", "zero3"):
            model = build("paper-1b", 32_000)
            got = run_ours(model, data, 3, args.gpu_micro_batch, args.gpu_micro_batch, Path(tmp) / stage,
                           precision="bf16", deepspeed=stage)
            print(f"  {stage}: 3 steps ran, {got['step_tokens_per_s']:.0f} tokens/s/GPU, MFU {got['mfu']:.1%}")
            del model
            torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-m", help="config name of the CPU benchmark model")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--min-len", type=int, default=24)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu-steps", type=int, default=20)
    parser.add_argument("--gpu-micro-batch", type=int, default=8)
    parser.add_argument("--gpu-accum", type=int, default=1)
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing on GPU")
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not args.skip_cpu:
        cpu_bench(args)
    if torch.cuda.is_available():
        gpu_bench(args)
    else:
        print("GPU part skipped: no CUDA device")


if __name__ == "__main__":
    main()
