"""Tokenization and batching for decoder-only conditional LM finetuning.

One example is one sequence ``[bos] + template(source) + target + [eos]``; the loss is on the
target and EOS only (labels are -100 on BOS, the templated source and padding), so the model
is trained as p(target | source), the paper's decoder-only setting.

Lengths (the paper's Table 1: 256/256 for translation, 512/256 for MLSum):
- the prompt ``[bos] + template(source)`` is at most ``max_source_tokens`` tokens: the source's
  own tokens are cut from the end so that the template text always survives (MLSum's
  "Summarize ... in German:" prefix is part of the source and is at its start, so it survives too);
- the target part ``target + [eos]`` is at most ``max_target_tokens`` tokens: the target is cut
  from the end and EOS is always kept, so a generation budget of ``max_target_tokens`` new
  tokens always has room for the complete labelled sequence.

The template prefix + source, the template suffix and the target are tokenized separately and
concatenated (the prefix goes with the source so that a prefix ending in a space tokenizes
naturally). That is what makes
``encode_prompt(...) == encode_example(...).input_ids[:prompt_length]`` hold exactly (generation
conditions on precisely the tokens training saw) and lets the target be truncated alone.

Tokenizers without a pad token (GPT-NeoX/Pythia, Llama) pad with EOS; padding is never in the
loss because labels on padding are -100 and the attention mask is 0. Tokenizers without a BOS
token get no BOS.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from scaling_repro.data.types import Example, TaskInfo
from scaling_repro.errors import UserError

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
"""Label value the loss ignores (PyTorch cross-entropy's default ``ignore_index``)."""

_CHUNK = 10_000


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of one example: ``input_ids = [bos?] + prompt + target + [eos]``; ``labels`` are
    -100 on the first ``prompt_length`` positions (BOS and templated source) and equal
    ``input_ids`` on the target and EOS."""

    input_ids: list[int]
    labels: list[int]
    prompt_length: int


def pad_token_id(tokenizer) -> int:
    """Return the tokenizer's pad id, or its EOS id when it has no pad token."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    raise UserError(
        f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has neither a pad nor an eos token; "
        "set model.tokenizer to one that defines eos_token"
    )


def _eos_id(tokenizer) -> int:
    if tokenizer.eos_token_id is None:
        raise UserError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no eos token, which marks the "
            "end of every target; set model.tokenizer to one that defines eos_token"
        )
    return int(tokenizer.eos_token_id)


def _bos(tokenizer) -> list[int]:
    return [] if tokenizer.bos_token_id is None else [int(tokenizer.bos_token_id)]


def _tokenize(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text without any special tokens (batched through the fast tokenizer)."""
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def encode_text(tokenizer, text: str, max_tokens: int | None = None, add_bos: bool = True) -> list[int]:
    """Return ``[bos] + tokens(text)`` (no BOS when ``add_bos`` is false or the tokenizer has
    none), cut to at most ``max_tokens`` ids; no EOS is added."""
    ids = (_bos(tokenizer) if add_bos else []) + _tokenize(tokenizer, [text])[0]
    return ids if max_tokens is None else ids[:max_tokens]


def _template_parts(info: TaskInfo) -> tuple[str, str]:
    parts = info.template.split("{source}")
    if len(parts) != 2:
        raise UserError(f"task {info.name!r}: template {info.template!r} must contain '{{source}}' exactly once")
    return parts[0], parts[1]


@dataclass(frozen=True)
class _PromptPieces:
    """How a source becomes a prompt: ``bos + tokens(prefix + source)`` cut to fit, then the
    separately tokenized template suffix (the prefix is tokenized together with the source so
    that a prefix ending in a space does not leave a lone space token)."""

    bos: list[int]
    prefix: str
    tail: list[int]
    max_source_tokens: int

    @classmethod
    def build(cls, tokenizer, info: TaskInfo, max_source_tokens: int | None) -> _PromptPieces:
        prefix, suffix = _template_parts(info)
        bos = _bos(tokenizer)
        tail = _tokenize(tokenizer, [suffix])[0] if suffix else []
        limit = info.max_source_tokens if max_source_tokens is None else max_source_tokens
        template_tokens = len(bos) + len(_tokenize(tokenizer, [prefix])[0] if prefix else []) + len(tail)
        if template_tokens >= limit:
            raise UserError(
                f"task {info.name!r}: max_source_tokens={limit} leaves no room for the source after "
                f"the template's {template_tokens} tokens; raise task.max_source_tokens"
            )
        return cls(bos, prefix, tail, limit)

    @property
    def room(self) -> int:
        """Tokens left for ``prefix + source``."""
        return self.max_source_tokens - len(self.bos) - len(self.tail)

    def prompt(self, prefixed_source_ids: list[int]) -> list[int]:
        return self.bos + prefixed_source_ids[: self.room] + self.tail


def _target_part(target_ids: list[int], eos: int, max_target_tokens: int) -> list[int]:
    if max_target_tokens < 1:
        raise UserError(f"max_target_tokens must be >= 1 (room for EOS), got {max_target_tokens}")
    return target_ids[: max_target_tokens - 1] + [eos]


def encode_prompt(tokenizer, example: Example, info: TaskInfo, max_source_tokens: int | None = None) -> list[int]:
    """Return the ids generation conditions on: ``[bos] + template(source)``, at most
    ``max_source_tokens`` (default: the task's) long; equals
    ``encode_example(...).input_ids[:prompt_length]``."""
    pieces = _PromptPieces.build(tokenizer, info, max_source_tokens)
    return pieces.prompt(_tokenize(tokenizer, [pieces.prefix + example.source])[0])


def _join(prompt: list[int], target_part: list[int]) -> EncodedExample:
    return EncodedExample(
        input_ids=prompt + target_part,
        labels=[IGNORE_INDEX] * len(prompt) + target_part,
        prompt_length=len(prompt),
    )


def encode_example(
    tokenizer,
    example: Example,
    info: TaskInfo,
    max_source_tokens: int | None = None,
    max_target_tokens: int | None = None,
) -> EncodedExample:
    """Return the training sequence of one example with target-only labels (see the module
    docstring for the truncation rules; ``None`` limits mean the task's)."""
    return encode_examples(tokenizer, [example], info, max_source_tokens, max_target_tokens, log_counts=False)[0]


def encode_examples(
    tokenizer,
    examples: Sequence[Example],
    info: TaskInfo,
    max_source_tokens: int | None = None,
    max_target_tokens: int | None = None,
    *,
    split: str = "examples",
    log_counts: bool = True,
) -> list[EncodedExample]:
    """Return :func:`encode_example` of every example (tokenized in batches, with a progress
    bar on large splits) and log the split's token counts and how many sources/targets were
    truncated; ``split`` names the split in the log line."""
    chunks = encode_chunks(
        tokenizer, examples, info, max_source_tokens, max_target_tokens, split=split, log_counts=log_counts
    )
    return [example for chunk in chunks for example in chunk]


def encode_chunks(
    tokenizer,
    examples: Sequence[Example],
    info: TaskInfo,
    max_source_tokens: int | None = None,
    max_target_tokens: int | None = None,
    *,
    split: str = "examples",
    log_counts: bool = True,
) -> Iterator[list[EncodedExample]]:
    """Yield the encoded examples of :func:`encode_examples` in order, a chunk of at most
    10,000 at a time (so a caller that writes them out never holds the whole split), and log
    the same counts once the last chunk is out."""
    pieces = _PromptPieces.build(tokenizer, info, max_source_tokens)
    target_limit = info.max_target_tokens if max_target_tokens is None else max_target_tokens
    eos = _eos_id(tokenizer)
    prompt_tokens = total_tokens = longest = truncated_sources = truncated_targets = 0
    # Chunks bound the memory of the tokenizer's batch output and drive the progress bar.
    for start in tqdm(
        range(0, len(examples), _CHUNK),
        desc=f"tokenizing {info.name} {split}",
        unit="chunk",
        disable=len(examples) < 4 * _CHUNK,
    ):
        chunk = examples[start : start + _CHUNK]
        sources = _tokenize(tokenizer, [pieces.prefix + e.source for e in chunk])
        targets = _tokenize(tokenizer, [e.target for e in chunk])
        truncated_sources += sum(len(src) > pieces.room for src in sources)
        truncated_targets += sum(len(tgt) > target_limit - 1 for tgt in targets)
        encoded = [
            _join(pieces.prompt(src), _target_part(tgt, eos, target_limit)) for src, tgt in zip(sources, targets)
        ]
        prompt_tokens += sum(e.prompt_length for e in encoded)
        total_tokens += sum(len(e.input_ids) for e in encoded)
        longest = max([longest] + [len(e.input_ids) for e in encoded])
        yield encoded
    if log_counts:
        log.info(
            "%s %s: %d examples, %d tokens (%d prompt + %d target incl. eos), longest %d; "
            "truncated %d sources (> %d prompt tokens) and %d targets (> %d tokens)",
            info.name,
            split,
            len(examples),
            total_tokens,
            prompt_tokens,
            total_tokens - prompt_tokens,
            longest,
            truncated_sources,
            pieces.max_source_tokens,
            truncated_targets,
            target_limit,
        )


def token_counts(encoded: Sequence[EncodedExample]) -> dict[str, int]:
    """Return ``{"examples", "prompt_tokens", "target_tokens", "total_tokens"}`` of encoded examples."""
    prompt = sum(e.prompt_length for e in encoded)
    total = sum(len(e.input_ids) for e in encoded)
    return {"examples": len(encoded), "prompt_tokens": prompt, "target_tokens": total - prompt, "total_tokens": total}


def collate_for_lm(batch: Sequence[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Return right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on padding),
    each of shape (batch, longest sequence in the batch)."""
    width = max(len(e.input_ids) for e in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(input_ids, attention_mask)`` with each sequence right-aligned (padding on the
    left), as batched generation needs: every row's next token follows its last real token."""
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if len(seq):
            input_ids[row, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
            attention_mask[row, width - len(seq) :] = 1
    return input_ids, attention_mask
