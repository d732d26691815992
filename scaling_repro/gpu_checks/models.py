"""Models of the checks, built the way the stages build them (seeded, whole, on a device)."""

from __future__ import annotations

import torch

from scaling_repro.gpu_checks.lengths import BOS_ID, EOS_ID, PAD_ID


def build(
    config_name: str,
    vocab: int,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
) -> torch.nn.Module:
    """Return a randomly initialized model of config ``config_name`` with ``vocab`` ids, built
    whole (never partitioned by a ZeRO-3 config still set in this process) on ``device``."""
    from scaling_repro.models.configs import build_config, build_model
    from scaling_repro.train.distributed import whole_construction

    config = build_config(config_name, vocab, bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID)
    torch.manual_seed(seed)
    with whole_construction():
        return build_model(config, device=device, dtype=dtype, attn_implementation=attn_implementation)


def device() -> torch.device:
    """Return the device the stages train and evaluate on here (the pipeline's choice)."""
    from scaling_repro.train.eval_weights import evaluation_device

    return evaluation_device()


def autocast_dtype(precision: str) -> torch.dtype | None:
    """Return the autocast dtype a run of ``train.precision`` trains and evaluates under."""
    from scaling_repro.train.distributed import mixed_precision

    return torch.bfloat16 if mixed_precision(precision) == "bf16" else None


def dtype_name(dtype: torch.dtype | None) -> str:
    """Return "bfloat16" / "float32" for a dtype; None (no autocast) is float32."""
    return str(dtype or torch.float32).removeprefix("torch.")
