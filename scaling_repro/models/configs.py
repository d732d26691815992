"""Base-model architectures: the paper's five sizes (Table 3) and a tiny CPU ladder, as
Hugging Face ``LlamaConfig``s with multi-query attention, plus parameter counting. Why this
family and why non-embedding counts: docs/models.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    from transformers import LlamaConfig, PreTrainedModel

ParamsCounted = Literal["non_embedding", "total"]
MODEL_PARAMS_COUNTED: ParamsCounted = "non_embedding"
"""The count every RunRecord's ``model_params`` holds (see docs/models.md)."""

PALM_VOCAB_SIZE = 256_000
"""PaLM's SentencePiece vocabulary; used only to show paper-config totals (the paper gives none)."""


@dataclass(frozen=True)
class Architecture:
    """The shape of one named decoder; ``nominal_params`` is the paper's size name, if any."""

    name: str
    layers: int
    heads: int
    head_dim: int
    ffn_dim: int
    model_dim: int
    family: Literal["paper", "tiny"]
    listing_vocab_size: int
    nominal_params: int | None = None
    kv_heads: int = 1
    max_positions: int = 2048


def _paper(size: int, layers: int, heads: int, ffn_dim: int, model_dim: int) -> Architecture:
    return Architecture(
        f"paper-{size}b", layers, heads, 256, ffn_dim, model_dim, "paper", PALM_VOCAB_SIZE, size * 10**9
    )


def _tiny(suffix: str, model_dim: int, layers: int, ffn_dim: int) -> Architecture:
    return Architecture(f"tiny-{suffix}", layers, model_dim // 16, 16, ffn_dim, model_dim, "tiny", 512)


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        # Table 3: layers, heads, FFN dim, model dim (head dim 256 throughout).
        _paper(1, 16, 8, 8192, 2048),
        _paper(2, 20, 10, 10240, 2560),
        _paper(4, 24, 12, 12288, 3072),
        _paper(8, 32, 16, 16384, 4096),
        _paper(16, 40, 20, 20480, 5120),
        _tiny("xs", 32, 2, 64),
        _tiny("s", 64, 2, 128),
        _tiny("m", 80, 3, 192),
        _tiny("l", 96, 4, 256),
        _tiny("xl", 128, 4, 384),
    )
}
CONFIG_NAMES: tuple[str, ...] = tuple(ARCHITECTURES)
PAPER_CONFIG_NAMES: tuple[str, ...] = tuple(n for n, a in ARCHITECTURES.items() if a.family == "paper")
TINY_CONFIG_NAMES: tuple[str, ...] = tuple(n for n, a in ARCHITECTURES.items() if a.family == "tiny")


def is_config_name(name: str) -> bool:
    """True when ``name`` is one of :data:`CONFIG_NAMES` (not a hub id or a path)."""
    return name in ARCHITECTURES


def get_architecture(name: str) -> Architecture:
    """Return the architecture called ``name``; raise ``UserError`` listing the known names."""
    from scaling_repro.errors import UserError

    if name not in ARCHITECTURES:
        raise UserError(f"model config {name!r} is not known; known configs: {', '.join(CONFIG_NAMES)}")
    return ARCHITECTURES[name]


def build_config(
    name: str,
    vocab_size: int,
    *,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> LlamaConfig:
    """Return the ``LlamaConfig`` of config ``name`` with ``vocab_size`` token embeddings
    (tied to the output layer) and one key/value head."""
    from transformers import LlamaConfig

    arch = get_architecture(name)
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=arch.model_dim,
        intermediate_size=arch.ffn_dim,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        num_key_value_heads=arch.kv_heads,
        head_dim=arch.head_dim,
        hidden_act="silu",
        max_position_embeddings=arch.max_positions,
        tie_word_embeddings=True,
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )


def build_model(
    config,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
) -> PreTrainedModel:
    """Return a randomly initialized causal LM for ``config`` (HF's own init, drawn from the
    global torch RNG: seed it first). ``device="meta"`` allocates no memory (for counting)."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs = {"dtype": dtype} if dtype is not None else {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    with torch.device(device or "cpu"):
        return AutoModelForCausalLM.from_config(config, **kwargs)


def full_numel(param: torch.Tensor) -> int:
    """Return the elements of ``param``, whole even when DeepSpeed ZeRO-3 holds only a
    partition of it here (``ds_numel``)."""
    return getattr(param, "ds_numel", None) or param.numel()


@dataclass(frozen=True)
class ParamCounts:
    """Unique parameters of a model: ``total`` = ``embedding`` + ``non_embedding``."""

    total: int
    embedding: int
    non_embedding: int

    def counted(self, kind: ParamsCounted = MODEL_PARAMS_COUNTED) -> int:
        """Return the ``kind`` count ("non_embedding" or "total")."""
        return self.non_embedding if kind == "non_embedding" else self.total


def count_parameters(model: torch.nn.Module) -> ParamCounts:
    """Count ``model``'s unique parameters (tied weights once; works on the meta device and on
    a model partitioned by DeepSpeed ZeRO-3).

    Embedding parameters are those of every ``nn.Embedding`` (token and learned position
    embeddings) and of the output embeddings (LM head) when they are a separate matrix.
    """
    import torch

    embedding_ids: set[int] = set()
    embedding = 0
    modules = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    get_output = getattr(model, "get_output_embeddings", None)
    output = get_output() if callable(get_output) else None
    if output is not None:
        modules.append(output)
    for module in modules:
        for param in module.parameters(recurse=False):
            if id(param) not in embedding_ids:
                embedding_ids.add(id(param))
                embedding += full_numel(param)
    total = sum(full_numel(p) for p in model.parameters())
    return ParamCounts(total=total, embedding=embedding, non_embedding=total - embedding)


def architecture_counts(name: str, vocab_size: int | None = None) -> ParamCounts:
    """Count the parameters of config ``name`` built on the meta device (no memory) with
    ``vocab_size`` (default: the architecture's listing vocabulary)."""
    arch = get_architecture(name)
    config = build_config(name, vocab_size or arch.listing_vocab_size)
    return count_parameters(build_model(config, device="meta"))
