"""Throughput accounting: tokens per second per device and model FLOPs utilization (MFU).

Model FLOPs per trained token follow PaLM (Chowdhery et al. 2022, App. B): ``6 N + 12 L H Q T``
with N the parameters of matrix multiplies, L layers, H heads of dimension Q and T the
sequence length. Under a PET method the frozen weights skip their weight-gradient matmul, so
we count ``4 N + 2 N_trainable`` instead of ``6 N`` (the same as 6 N when all is trainable).
Input embeddings are lookups, not matmuls: N is counted over ``nn.Linear`` layers, which
includes the LM head. The LM head runs only where a logit is computed: the loss asks for
logits at the positions that predict a target token (``logits_to_keep``), so its
``4 N_head + 2 N_head_trainable`` FLOPs are counted per target token, not per token. Counting
them at every position would overstate MFU by 1.2-1.45x at a 256K vocabulary, where most
positions are the prompt.

Tokens are real tokens: padding is not counted, and prompt tuning's virtual tokens are not
tokens of the data, but their compute is counted in the FLOPs (every example runs through
the model ``prompt length`` positions longer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scaling_repro.models.configs import full_numel

# Dense (no sparsity) peak bf16 tensor-core FLOP/s per GPU model, from the vendors' data
# sheets. Matched as substrings of torch.cuda.get_device_name(), most specific first.
PEAK_BF16_FLOPS: tuple[tuple[str, float], ...] = (
    ("GB200", 2.5e15),
    ("B200", 2.25e15),
    ("B100", 1.75e15),
    ("H200", 989e12),
    ("GH200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    ("H800", 989e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("A10G", 70e12),
    ("A10", 125e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
    ("MI300X", 1307e12),
    ("MI250X", 383e12),
)


def peak_bf16_flops(device: torch.device | str | None = None) -> float | None:
    """Return the dense peak bf16 FLOP/s of a CUDA device, or None (CPU, unknown GPU)."""
    device = torch.device(device) if device is not None else None
    if device is not None and device.type != "cuda":
        return None
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_BF16_FLOPS:
        if key in name:
            return flops
    return None


def matmul_params(model: torch.nn.Module) -> tuple[int, int]:
    """Return (all, trainable) parameter counts of the ``nn.Linear`` weights and biases of
    ``model`` (tied weights counted once per use: a tied LM head does a matmul)."""
    total = trainable = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            for param in (module.weight, module.bias):
                if param is None:
                    continue
                total += full_numel(param)
                trainable += full_numel(param) if param.requires_grad else 0
    return total, trainable


def attention_shape(config) -> tuple[int, int]:
    """Return (layers, heads x head dim) of a Hugging Face decoder config."""
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 0)
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", 0)
    head_dim = getattr(config, "head_dim", None)
    if not head_dim and heads:
        hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 0)
        head_dim = hidden // heads
    return int(layers or 0), int((heads or 0) * (head_dim or 0))


def flops_per_token(
    matmul_params_total: int,
    matmul_params_trainable: int,
    layers: int,
    attention_dim: int,
    seq_len: float,
) -> float:
    """Return training FLOPs per token whose logits are computed: ``4 N + 2 N_trainable + 12 L (H Q) T``."""
    return 4 * matmul_params_total + 2 * matmul_params_trainable + 12 * layers * attention_dim * seq_len


def head_params(model: torch.nn.Module) -> tuple[int, int]:
    """Return (all, trainable) parameter counts of the LM head (the output embeddings of the
    model or of a PEFT model's base); (0, 0) when the model names none."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    get_head = getattr(base, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    if head is None:
        return 0, 0
    return matmul_params(head)


@dataclass(frozen=True)
class ModelFlops:
    """What the FLOPs of training a model depend on: its matmul parameters (the LM head's
    share of them apart) and attention shape."""

    matmul_total: int  # LM head included
    matmul_trainable: int  # LM head included
    layers: int
    attention_dim: int  # heads x head dim
    virtual_tokens: int = 0  # prepended to every example by prompt tuning
    head_total: int = 0  # the LM head's part of matmul_total
    head_trainable: int = 0  # the LM head's part of matmul_trainable

    @classmethod
    def of(cls, model: torch.nn.Module) -> ModelFlops:
        """Return the FLOP shape of ``model`` (plain or PEFT, before Accelerate wraps it)."""
        peft_config = getattr(model, "active_peft_config", None)
        virtual = peft_config.num_virtual_tokens if peft_config is not None and peft_config.is_prompt_learning else 0
        return cls(
            *matmul_params(model),
            *attention_shape(getattr(model, "config", None)),
            virtual_tokens=virtual,
            head_total=(heads := head_params(model))[0],
            head_trainable=heads[1],
        )

    def training_flops(
        self, tokens: float, squared_lengths: float, examples: float = 0, logit_positions: float | None = None
    ) -> float:
        """Return the training FLOPs of ``examples`` sequences holding ``tokens`` real tokens in
        all, whose squared lengths sum to ``squared_lengths``, with logits computed at
        ``logit_positions`` of them (the target tokens; None: every position).

        Each position's attention term ``12 L (H Q) T`` uses its own sequence's length T, so
        over a batch of unequal sequences it sums to ``12 L (H Q) sum(T_i^2)``; with ``v``
        virtual tokens each sequence is ``T_i + v`` positions long. Every position runs the
        body (all matmuls but the LM head); the LM head runs at ``logit_positions`` only.
        """
        body = flops_per_token(
            self.matmul_total - self.head_total, self.matmul_trainable - self.head_trainable, 0, 0, 0
        )
        head = flops_per_token(self.head_total, self.head_trainable, 0, 0, 0)
        v = self.virtual_tokens
        positions = tokens + v * examples
        logits = positions if logit_positions is None else logit_positions
        squared = squared_lengths + 2 * v * tokens + v * v * examples
        return body * positions + head * logits + 12 * self.layers * self.attention_dim * squared


def mfu(tokens_per_second_per_device: float, flops_token: float, peak_flops: float | None) -> float | None:
    """Return model FLOPs utilization in [0, 1], or None without a known peak (CPU)."""
    if not peak_flops:
        return None
    return tokens_per_second_per_device * flops_token / peak_flops
