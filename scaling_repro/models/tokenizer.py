"""Tokenizers: load a pretrained one, or train a small one for the tiny offline models.

``train_tokenizer`` trains a byte-level BPE (GPT-2 style: lossless, decode(encode(x)) == x) or a
Unigram model (SentencePiece style, Metaspace) with the ``tokenizers`` library and saves it in
Hugging Face format (``tokenizer.json`` + ``tokenizer_config.json``), so ``load_tokenizer`` and
``AutoTokenizer.from_pretrained`` read it back like any hub tokenizer. Special tokens:
``<pad>`` (id 0), ``<s>`` (bos), ``</s>`` (eos), ``<unk>``. No post-processor adds BOS/EOS on its
own: :mod:`scaling_repro.data.collate` places them explicitly for every tokenizer.

By default the BPE alphabet is the characters of the training texts plus space, tab and newline (a vocabulary of ~500
for the synthetic languages would otherwise spend 256 entries on unused bytes); a character the
training texts never had becomes ``<unk>``. ``full_byte_alphabet=True`` adds all 256 bytes and
makes the tokenizer lossless on any text.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from scaling_repro.errors import UserError
from scaling_repro.fileio import make_temp_dir
from scaling_repro.offline import hub_offline

log = logging.getLogger(__name__)

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
WHITESPACE = " \n\t"
"""Always in the alphabet: prompt templates end in a newline even when the training texts have none."""


def _byte_level(chars: str) -> list[str]:
    """The byte-level BPE symbols (e.g. 'Ċ' for newline) of ``chars``."""
    from tokenizers import pre_tokenizers

    mapped = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(chars)
    return list("".join(piece for piece, _ in mapped))


def _build(kind: str, vocab_size: int, min_frequency: int, full_byte_alphabet: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet() if full_byte_alphabet else _byte_level(WHITESPACE),
            show_progress=False,
        )
    elif kind == "unigram":
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),
            unk_token=UNK,
            initial_alphabet=list(WHITESPACE),
            show_progress=False,
        )
    else:
        raise UserError(f"tokenizer kind {kind!r} is not known; allowed: bpe, unigram")
    return tokenizer, trainer


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | os.PathLike,
    kind: Literal["bpe", "unigram"] = "bpe",
    *,
    min_frequency: int = 2,
    full_byte_alphabet: bool = False,
):
    """Train a ``kind`` tokenizer of at most ``vocab_size`` entries on ``texts``, save it in
    Hugging Face format to ``out_dir`` (replaced atomically) and return it as a
    ``PreTrainedTokenizerFast`` with pad/bos/eos/unk set."""
    from transformers import PreTrainedTokenizerFast

    if vocab_size <= len(SPECIAL_TOKENS):
        raise UserError(f"tokenizer vocab_size must exceed {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}")
    tokenizer, trainer = _build(kind, vocab_size, min_frequency, full_byte_alphabet)
    texts = list(texts)
    if not any(t.strip() for t in texts):
        raise UserError("cannot train a tokenizer on no text: the training texts are empty")
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK
    )
    _save_atomically(fast, Path(out_dir))
    log.info("trained a %s tokenizer with %d entries on %d texts -> %s", kind, len(fast), len(texts), out_dir)
    return fast


def _save_atomically(tokenizer, out_dir: Path) -> None:
    """Save into a sibling temporary directory, then swap it in, so a crash never leaves a half
    written tokenizer where a later run would load it."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out_dir.parent, prefix=f".{out_dir.name}.")
    try:
        tokenizer.save_pretrained(str(tmp))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_tokenizer(name_or_path: str, revision: str | None = None, trust_remote_code: bool = False):
    """Return the fast tokenizer of a hub id (at ``revision``) or a local directory; raise
    ``UserError`` naming it when it cannot be found (e.g. offline without a local copy)."""
    from transformers import AutoTokenizer

    if name_or_path.startswith(("/", "./", "../", "~")) and not Path(name_or_path).expanduser().is_dir():
        raise UserError(f"tokenizer directory {name_or_path!r} does not exist")
    try:
        return AutoTokenizer.from_pretrained(
            name_or_path, revision=revision, trust_remote_code=trust_remote_code, use_fast=True
        )
    except (OSError, ValueError) as err:
        offline = hub_offline()
        hint = (
            " (the hub is disabled by HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE: download it first, or point "
            "model.tokenizer at a local directory)"
            if offline
            else "; model.tokenizer takes a hub id or a local directory with tokenizer.json"
        )
        raise UserError(
            f"cannot load tokenizer {name_or_path!r}{f' at revision {revision!r}' if revision else ''}: "
            f"{str(err).splitlines()[0]}{hint}"
        ) from err
