"""Target-token negative log-likelihood of a causal LM: the one loss behind the training
objective, dev loss and test PPL.

A batch is what :func:`scaling_repro.data.collate.collate_for_lm` returns (right-padded
``input_ids``, ``attention_mask`` and ``labels`` with ``IGNORE_INDEX`` on BOS, prompt and
padding) or what :func:`scaling_repro.data.packing.collate_packed` returns (several examples
per row, told apart by ``position_ids``). Exactly the positions whose label is not ignored are
scored (target tokens and EOS), so a PEFT prompt-tuned model, which prepends virtual tokens
inside its forward, is scored on the same tokens as the full model: its extra leading logits
are dropped before labels are aligned.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from scaling_repro.data.collate import IGNORE_INDEX
from scaling_repro.data.packing import VARLEN_KEYS

CE_CHUNK_ELEMENTS = 2**28
"""Logits (positions x vocabulary) above which the loss is computed in chunks: 1 GiB of fp32,
e.g. 1,024 positions of a 256K vocabulary."""


def predicted_tokens(labels: torch.Tensor) -> torch.Tensor:
    """Return how many labels a causal LM is scored on (position 0 is never predicted)."""
    return (labels[:, 1:] != IGNORE_INDEX).sum()


def supports_logits_to_keep(model: torch.nn.Module) -> bool:
    """True when the (unwrapped, possibly PEFT) causal LM's forward takes ``logits_to_keep``
    (Hugging Face models since transformers 4.50): then only scored positions get logits."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


PACKED_MODEL_TYPES = frozenset({"llama", "qwen2", "gpt_neox", "gpt2"})
"""Model types whose packed batches (``position_ids``, no ``attention_mask``) are tested to give
each example's loss as if it were alone. OPT is not among them: it derives positions from the
attention mask."""


def packing_support(model: torch.nn.Module) -> tuple[bool, str]:
    """Return (whether ``model`` can train on packed batches, why not); prompt tuning cannot:
    its virtual tokens are prepended once per row, not once per example."""
    peft_config = getattr(model, "active_peft_config", None)
    if peft_config is not None and peft_config.is_prompt_learning:
        return False, f"{peft_config.peft_type.value.lower()} prepends virtual tokens to each row"
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    model_type = getattr(getattr(base, "config", None), "model_type", None)
    if model_type not in PACKED_MODEL_TYPES:
        return False, f"model type {model_type!r} is not one of {sorted(PACKED_MODEL_TYPES)}"
    return True, ""


def logits_to_keep(labels: torch.Tensor, packed: bool) -> torch.Tensor | int:
    """Return which logit positions a batch is scored on, for the model's ``logits_to_keep``:
    the positions whose next label is not ignored, as a 1-D index tensor for a packed batch,
    or as a count of final positions (from the first scored one to the end) for a padded one,
    which also holds when prompt tuning prepends virtual tokens. Call it on CPU labels: on a
    GPU it waits for the device."""
    scored = (labels[:, 1:] != IGNORE_INDEX).any(dim=0)
    if packed:
        return scored.nonzero().flatten()
    first = scored.nonzero()
    return labels.shape[1] - int(first[0]) if len(first) else 0


def token_nll_sum(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    keep_logits: bool = False,
    chunk_elements: int = CE_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Return the summed next-token NLL (fp32) of ``batch`` over its non-ignored labels.

    ``batch`` is padded (``attention_mask``) or packed (``position_ids``, see
    :mod:`scaling_repro.data.packing`). With ``keep_logits`` the LM head runs only on the
    positions that predict a label (the prompt of a finetuning example needs no logits: less
    compute, and far less memory with a large vocabulary); ``batch["logits_to_keep"]``, when
    present, holds :func:`logits_to_keep` computed ahead on the CPU. Logit positions before the
    input (prompt tuning prepends virtual tokens) are scored against ignored labels
    (:func:`aligned_targets`), so every model and PEFT method is scored on the same tokens and
    the logits are never copied.
    """
    labels = batch["labels"]
    packed = "attention_mask" not in batch
    inputs = {"position_ids": batch["position_ids"]} if packed else {"attention_mask": batch["attention_mask"]}
    # a flash-attention packed row's example bounds, computed on the CPU (else every layer derives them)
    inputs.update({key: batch[key] for key in VARLEN_KEYS if key in batch})
    keep: torch.Tensor | int = 0  # Hugging Face's "all positions"
    if keep_logits:
        keep = batch.get("logits_to_keep")
        if keep is None:
            keep = logits_to_keep(labels, packed)
        if torch.is_tensor(keep):
            keep = keep.to(labels.device)
        inputs["logits_to_keep"] = keep
    logits = model(input_ids=batch["input_ids"], use_cache=False, **inputs).logits
    targets = labels[:, keep + 1] if torch.is_tensor(keep) else aligned_targets(labels, logits.shape[1])
    return summed_cross_entropy(logits, targets.to(logits.device), chunk_elements)


def aligned_targets(labels: torch.Tensor, logit_positions: int) -> torch.Tensor:
    """Return the label each of the last ``logit_positions`` positions predicts (the next one;
    ``IGNORE_INDEX`` after the last input position and, for positions before the input such as
    prompt tuning's virtual tokens, before the first), so that logits are scored as they come
    out of the model: never sliced, never copied (a slice of (tokens x vocabulary) logits is
    not contiguous, and flattening it copies them all)."""
    length = labels.shape[1]
    shifted = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    if logit_positions <= length:
        return shifted[:, length - logit_positions :]
    return F.pad(shifted, (logit_positions - length, 0), value=IGNORE_INDEX)


def output_head(model: torch.nn.Module) -> torch.nn.Module | None:
    """Return the LM head (output embeddings) of a causal LM or of a PEFT model's base, or None."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    get_head = getattr(base, "get_output_embeddings", None)
    return get_head() if callable(get_head) else None


def target_nll_sum(
    model: torch.nn.Module, batch: Mapping[str, torch.Tensor], chunk_elements: int = CE_CHUNK_ELEMENTS
) -> torch.Tensor:
    """Return what :func:`token_nll_sum` returns, with the LM head run on the hidden states of
    the positions that predict a label only, gathered over the rows of the batch.

    ``logits_to_keep`` keeps positions (columns) for all rows alike, so in a padded batch of
    unequal prompts it still computes logits over most of every row; here the LM head's input
    is gathered to one row per predicted token (a forward pre-hook on the head), and the logits
    are (target tokens x vocabulary), contiguous. A model without output embeddings falls back
    to :func:`token_nll_sum`.
    """
    head = output_head(model)
    if head is None:
        return token_nll_sum(model, batch, supports_logits_to_keep(model), chunk_elements)
    labels = batch["labels"]
    length = labels.shape[1]
    predicts = F.pad(labels[:, 1:] != IGNORE_INDEX, (0, 1), value=False)  # position p predicts label p + 1

    def gather_predicting(module: torch.nn.Module, args: tuple) -> tuple:
        hidden = args[0]
        positions = hidden.shape[1]
        if positions >= length:  # prompt tuning's virtual tokens come first
            mask = F.pad(predicts, (positions - length, 0), value=False)
        else:
            mask = predicts[:, length - positions :]
        return (hidden[mask.to(hidden.device)], *args[1:])

    packed = "attention_mask" not in batch
    inputs = {"position_ids": batch["position_ids"]} if packed else {"attention_mask": batch["attention_mask"]}
    # a flash-attention packed row's example bounds, computed on the CPU (else every layer derives them)
    inputs.update({key: batch[key] for key in VARLEN_KEYS if key in batch})
    handle = head.register_forward_pre_hook(gather_predicting)
    try:
        logits = model(input_ids=batch["input_ids"], use_cache=False, **inputs).logits
    finally:
        handle.remove()
    targets = labels[:, 1:][predicts[:, :-1]]
    return summed_cross_entropy(logits, targets.to(logits.device), chunk_elements)


def summed_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, chunk_elements: int = CE_CHUNK_ELEMENTS
) -> torch.Tensor:
    """Return the fp32 cross-entropy of ``logits`` (..., vocab) against ``targets`` (...),
    summed over non-ignored targets.

    Above ``chunk_elements`` logits it runs over chunks of positions, each upcast to fp32 and
    recomputed in the backward pass, so no fp32 copy of all logits (tokens x a 256K
    vocabulary) is ever held; the sum is the same.
    """
    vocab = logits.shape[-1]
    flat_logits, flat_targets = logits.reshape(-1, vocab), targets.reshape(-1)
    rows = max(1, chunk_elements // vocab)
    if flat_logits.shape[0] <= rows:
        return _cross_entropy_sum(flat_logits, flat_targets)
    total = flat_logits.new_zeros((), dtype=torch.float32)
    for start in range(0, flat_logits.shape[0], rows):
        part = (flat_logits[start : start + rows], flat_targets[start : start + rows])
        if torch.is_grad_enabled() and flat_logits.requires_grad:
            total = total + checkpoint(_cross_entropy_sum, *part, use_reentrant=False)
        else:
            total = total + _cross_entropy_sum(*part)
    return total


def _cross_entropy_sum(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), targets, ignore_index=IGNORE_INDEX, reduction="sum")
