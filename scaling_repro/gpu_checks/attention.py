"""Packed batches under each attention kernel: the summed NLL of a micro-batch as the trainer
computes it (its :class:`~scaling_repro.train.batching.Batcher`, packed where
:func:`~scaling_repro.train.batching.use_packing` packs for this model) must equal the sum of
each example's NLL computed alone (a padded batch, one example per row, its padding masked).

A control shows the check can tell: the same packed rows with one position sequence per row
(no restarts: every example attends to the ones before it in its row, which is what a kernel
that ignores the restarts computes) must differ from the per-example sum by more than the
tolerance. The model's weights are drawn with a large spread, so that its outputs depend on
the context it attends to.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from scaling_repro.gpu_checks import lengths
from scaling_repro.gpu_checks.models import build, device
from scaling_repro.gpu_checks.runner import CUDA_NEEDED, Check, Context, Skip

KERNELS = ("sdpa", "eager", "flash_attention_2", "flex_attention")
INIT_STD = 0.2  # 10x Hugging Face's default: attention far from uniform
# Relative gaps allowed between the trainer's batch and the examples alone. Measured on a CPU
# (tiny-xl, vocabulary 32,000, 16 WMT-like examples): packed vs alone 0 in fp32 and 1e-5 with
# bf16 weights; the control differs by 1.1e-2 in both, so 1e-3 leaves room either side.
BF16_TOLERANCE, FP32_TOLERANCE = 1e-3, 1e-5


def kernel_present(kernel: str) -> str | None:
    """Return why ``kernel`` cannot run here, or None when it can."""
    if kernel == "flash_attention_2":
        if not torch.cuda.is_available():
            return CUDA_NEEDED
        from transformers.utils import is_flash_attn_2_available

        return None if is_flash_attn_2_available() else "flash_attn is not installed"
    if kernel == "flex_attention":
        from transformers.utils import is_torch_flex_attn_available

        return None if is_torch_flex_attn_available() else f"torch {torch.__version__} has no flex attention"
    return None


def packed_nll(kernel: str) -> Check:
    """Return the packed-vs-per-example NLL check under attention ``kernel``."""

    def check(ctx: Context, figures: dict[str, Any]) -> str:
        from scaling_repro.data.collate import collate_for_lm
        from scaling_repro.data.packing import collate_packed
        from scaling_repro.models.nll import packing_support, supports_logits_to_keep, token_nll_sum
        from scaling_repro.train.batching import Batcher, to_device, use_packing

        why_not = kernel_present(kernel)
        if why_not:
            raise Skip(why_not)
        sizes = ctx.sizes
        on_gpu = ctx.on_gpu
        dtype = torch.bfloat16 if on_gpu else None
        model = build(sizes.small_config, sizes.small_vocab, device=device(), dtype=dtype, attn_implementation=kernel)
        with torch.no_grad():
            for param in model.parameters():
                if param.dim() > 1:
                    param.normal_(0.0, INIT_STD)
        model.eval()
        examples = lengths.encoded_examples(lengths.WMT.scaled(sizes.length_scale), 16, sizes.small_vocab, seed=3)
        collate = partial(collate_for_lm, pad_id=lengths.PAD_ID)
        layout = use_packing("auto", model, examples)
        figures.update(
            model=f"{sizes.small_config}, vocab {sizes.small_vocab}, {str(model.dtype).removeprefix('torch.')}",
            packing=f"layout {layout}"
            if layout
            else f"not used: {packing_support(model)[1] or 'use_packing declined'}",
        )
        batcher = Batcher(collate, layout, supports_logits_to_keep(model))
        autocast = torch.autocast(device().type, dtype=torch.bfloat16, enabled=on_gpu)

        def nll(batch: dict[str, Any], keep: bool) -> float:
            with torch.no_grad(), autocast:
                return float(token_nll_sum(model, to_device(batch, device()), keep))

        rows = collate_packed(examples)
        width = rows["position_ids"].shape[1]
        rows["position_ids"] = torch.arange(width).expand_as(rows["position_ids"]).contiguous()
        trainer = nll(batcher(examples), batcher.keep_logits)
        alone = nll(collate(examples), False)  # one example per row, its padding masked
        control = nll(rows, False)
        tol = (BF16_TOLERANCE if on_gpu else FP32_TOLERANCE) * abs(alone)
        figures.update(
            rows=f"{len(examples)} examples in {len(rows['input_ids'])} rows of {width}",
            trainer_nll=trainer,
            per_example_nll=alone,
            gap=abs(trainer - alone),
            control_gap=abs(control - alone),
            tolerance=tol,
        )
        if abs(control - alone) <= tol:
            return "FAIL: the control (no position restarts) is within tolerance: the check cannot tell"
        if abs(trainer - alone) > tol:
            return f"FAIL: the trainer's batch gives NLL {trainer:.6g}, the examples alone {alone:.6g}"
        return "ok"

    return check
