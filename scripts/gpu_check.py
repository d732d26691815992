"""One-shot GPU validation: what only a GPU can show, in a few minutes, written to benchmarks/gpu.md.

    python scripts/gpu_check.py                    # on a machine with one CUDA GPU (~5-8 minutes)
    python scripts/gpu_check.py --smoke --out /tmp/gpu.md   # the same code path on a CPU, tiny sizes

Measures, for the paper's 1B architecture (Table 3, MQA) with the 256K vocabulary at WMT-like
lengths (prompt ~30 + target ~30 tokens, padded per batch):
- FMT, LoRA and prompt-tuning training steps in bf16: tokens/s per GPU, MFU, peak memory;
- the device and autocast dtype that evaluation (test loss and greedy decoding) runs with, for
  FMT and for PET: they must be the GPU and the training precision;
- greedy decoding tokens/s at batch 32 and 256;
- the seconds to write a best checkpoint (``save_pretrained``, safetensors);
- a few ZeRO-2 steps when DeepSpeed is installed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import build, collate, make_data  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    """What one check run uses: the GPU sizes, or tiny ones for a CPU smoke run."""

    config: str
    vocab: int
    batch: int
    micro: int
    steps: int
    decode_batches: tuple[int, ...]
    decode_prompts: int
    new_tokens: int


GPU = Sizes("paper-1b", 256_000, 64, 16, 12, (32, 256), 512, 32)
SMOKE = Sizes("tiny-s", 300, 8, 4, 2, (4, 8), 16, 4)


def train_steps(model, data, sizes: Sizes, run_dir: Path, **overrides) -> dict:
    """Train ``sizes.steps`` steps and return tokens/s per device, MFU and peak memory (GB)."""
    from scaling_repro.config.recipe import TrainConfig
    from scaling_repro.train.loop import train

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    config = TrainConfig(
        max_steps=sizes.steps,
        max_epochs=1e6,
        eval_every=10**9,
        log_every=10**9,
        micro_batch_size=sizes.micro,
        **overrides,
    )
    result = train(
        model, data, data[: sizes.micro], collate, run_dir, config=config, lr=1e-3, batch_size=sizes.batch, seed=0
    )
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {"tokens/s": result.tokens_per_second, "MFU": result.mfu, "peak GB": peak}


def evaluation_numerics(model, precision_dtype) -> dict:
    """Return the device and autocast dtype the decoder's forward sees when decoding runs under
    the training precision as the pipeline sets it (for PET the decoder is the base model,
    whose forward Accelerate never wrapped)."""
    from scaling_repro.evaluate.generate import greedy_generate

    seen = {}

    def record(module, args):
        device = next(module.parameters()).device
        seen["device"] = str(device)
        seen["autocast"] = (
            str(torch.get_autocast_dtype(device.type)) if torch.is_autocast_enabled(device.type) else "off"
        )

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    handle = base.register_forward_pre_hook(record)
    device_type = next(model.parameters()).device.type
    try:
        with torch.autocast(device_type, dtype=precision_dtype, enabled=precision_dtype is not None):
            greedy_generate(model, [[1, 5, 6, 7]], eos_token_id=2, pad_token_id=0, max_new_tokens=2, batch_size=1)
    finally:
        handle.remove()
    return seen


def decode_speed(model, sizes: Sizes, precision_dtype) -> dict:
    """Return greedy decoding tokens/s at each of ``sizes.decode_batches``."""
    from scaling_repro.evaluate.generate import greedy_generate

    prompts = [[1] + [4 + (i * 7 + j) % (sizes.vocab - 4) for j in range(40)] for i in range(sizes.decode_prompts)]
    device_type = next(model.parameters()).device.type
    out = {}
    for batch in sizes.decode_batches:
        start = time.perf_counter()
        with torch.autocast(device_type, dtype=precision_dtype, enabled=precision_dtype is not None):
            greedy_generate(
                model, prompts, eos_token_id=-1, pad_token_id=0, max_new_tokens=sizes.new_tokens, batch_size=batch
            )
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        out[f"batch {batch}"] = len(prompts) * sizes.new_tokens / (time.perf_counter() - start)
    return out


def checkpoint_seconds(model, directory: Path) -> float:
    """Return the seconds ``save_pretrained`` takes to write the model as safetensors."""
    start = time.perf_counter()
    model.save_pretrained(directory)
    return time.perf_counter() - start


def run_checks(sizes: Sizes, tmp: Path) -> list[tuple[str, dict]]:
    """Run every check and return (name, figures) rows."""
    from scaling_repro.config.recipe import LoraMethod, PromptMethod
    from scaling_repro.methods import apply_method
    from scaling_repro.pipeline import evaluation_device
    from scaling_repro.train.distributed import deepspeed_available

    on_gpu = torch.cuda.is_available()
    precision = "bf16" if on_gpu else "fp32"
    precision_dtype = torch.bfloat16 if on_gpu else None
    data = make_data(max(256, sizes.batch * sizes.steps), sizes.vocab, 55, 70)
    rows = []
    for kind, method in (("FMT", None), ("LoRA", LoraMethod(rank=4)), ("Prompt", PromptMethod(prompt_length=100))):
        model = build(sizes.config, sizes.vocab)
        if method is not None:
            model = apply_method(model, method, seed=0).model
        rows.append(
            (
                f"{kind} train ({sizes.config}, {precision})",
                train_steps(model, data, sizes, tmp / kind, precision=precision),
            )
        )
        model = model.to(evaluation_device())
        rows.append((f"{kind} decoding device and autocast", evaluation_numerics(model, precision_dtype)))
        if kind == "FMT":
            rows.append(("greedy decoding tokens/s", decode_speed(model, sizes, precision_dtype)))
            rows.append(("best checkpoint write", {"seconds": checkpoint_seconds(model, tmp / "best")}))
        del model
        if on_gpu:
            torch.cuda.empty_cache()
    ok, reason = deepspeed_available()
    if ok:
        model = build(sizes.config, sizes.vocab)
        rows.append(
            ("FMT ZeRO-2 steps", train_steps(model, data, sizes, tmp / "zero2", precision=precision, deepspeed="zero2"))
        )
    else:
        rows.append(("FMT ZeRO-2 steps", {"skipped": reason}))
    return rows


def markdown(rows: list[tuple[str, dict]], device: str) -> str:
    """Return the report: one line per check with its figures."""

    def show(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if value < 1 else f"{value:,.1f}"
        return "n/a" if value is None else str(value)

    lines = [f"# GPU check\n\nDevice: {device}; torch {torch.__version__}.\n", "| check | figures |", "|---|---|"]
    lines += [f"| {name} | " + "; ".join(f"{k} {show(v)}" for k, v in figures.items()) + " |" for name, figures in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the checks and write the report; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check the code path on a CPU")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/gpu.md"), help="report file (default %(default)s)")
    args = parser.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        print("no CUDA GPU here: run with --smoke to check the code path on the CPU", file=sys.stderr)
        return 2
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_checks(SMOKE if args.smoke else GPU, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(rows, device))
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
