"""Target-token negative log-likelihood of a causal LM: the one loss behind the training
objective, dev loss and test PPL.

A batch is what :func:`scaling_repro.data.collate.collate_for_lm` returns: right-padded
``input_ids``, ``attention_mask`` and ``labels`` with ``IGNORE_INDEX`` on BOS, prompt and
padding. Exactly the positions whose label is not ignored are scored (target tokens and EOS),
so a PEFT prompt-tuned model, which prepends virtual tokens inside its forward, is scored on the
same tokens as the full model: its extra leading logits are dropped before labels are aligned.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from scaling_repro.data.collate import IGNORE_INDEX


def predicted_tokens(labels: torch.Tensor) -> torch.Tensor:
    """Return how many labels a causal LM is scored on (position 0 is never predicted)."""
    return (labels[:, 1:] != IGNORE_INDEX).sum()


def supports_logits_to_keep(model: torch.nn.Module) -> bool:
    """True when the (unwrapped, possibly PEFT) causal LM's forward takes ``logits_to_keep``
    (Hugging Face models since transformers 4.50): then only scored positions get logits."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def token_nll_sum(model: torch.nn.Module, batch: Mapping[str, torch.Tensor], logits_to_keep: bool = False) -> torch.Tensor:
    """Return the summed next-token NLL (fp32) of ``batch`` over its non-ignored labels.

    With ``logits_to_keep`` the LM head runs only from the first position that predicts a
    label to the end (the prompt of a finetuning example needs no logits: less compute, and
    far less memory with a large vocabulary). Logit positions beyond the input length (prompt
    tuning prepends virtual tokens) are cut off the front, so every model and PEFT method is
    scored on the same tokens.
    """
    labels = batch["labels"]
    length = labels.shape[1]
    keep = 0  # Hugging Face's "all positions"
    if logits_to_keep:
        scored = (labels[:, 1:] != IGNORE_INDEX).any(dim=0).nonzero()
        keep = length - int(scored[0]) if len(scored) else 0
    extra = {"logits_to_keep": keep} if logits_to_keep else {}
    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False, **extra)
    kept = keep or length
    logits = outputs.logits[:, -kept:-1, :]
    targets = labels[:, length - kept + 1 :].to(logits.device)
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
