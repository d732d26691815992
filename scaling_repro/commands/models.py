"""``scaling-repro models``: list the known model configs with their parameter counts."""

from __future__ import annotations

import argparse

from scaling_repro.commands.common import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "models",
        "list the model configs (paper Table 3 and the tiny ladder) with parameter counts",
        """
        Builds every config on the meta device (no memory) and counts its parameters. The
        `non-emb` column is what runs record as model_params (non-embedding: all but the tied
        token embeddings); `total` adds the embeddings at the listed vocabulary size (paper:
        PaLM's 256k, which the paper does not state; tiny: 512, about the tiny tokenizers').
        At run time the vocabulary comes from the tokenizer. `vs name` is the non-embedding
        count against the paper's nominal size.
        """,
        """
        scaling-repro models
        scaling-repro models --vocab-size 32000
        """,
    )
    parser.add_argument("--vocab-size", type=int, default=None, help="vocabulary size for every config")
    parser.set_defaults(func=run)


def _human(n: int) -> str:
    for unit, scale in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def run(args: argparse.Namespace) -> int:
    from scaling_repro.errors import UserError
    from scaling_repro.models.configs import ARCHITECTURES, architecture_counts

    if args.vocab_size is not None and args.vocab_size < 1:
        raise UserError(f"--vocab-size must be positive, got {args.vocab_size}")
    header = ["name", "layers", "d_model", "heads x dim", "kv", "ffn", "vocab", "non-emb", "total", "vs name"]
    rows = []
    for name, arch in ARCHITECTURES.items():
        vocab = args.vocab_size or arch.listing_vocab_size
        counts = architecture_counts(name, vocab)
        versus = f"{counts.non_embedding / arch.nominal_params - 1:+.1%}" if arch.nominal_params else ""
        rows.append(
            [
                name,
                str(arch.layers),
                str(arch.model_dim),
                f"{arch.heads} x {arch.head_dim}",
                str(arch.kv_heads),
                str(arch.ffn_dim),
                str(vocab),
                f"{counts.non_embedding:,} ({_human(counts.non_embedding)})",
                f"{counts.total:,} ({_human(counts.total)})",
                versus,
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(
        "Llama-style decoder, SwiGLU FFN, 1 key/value head (MQA), tied embeddings; model_params = non-embedding count."
    )
    return 0
