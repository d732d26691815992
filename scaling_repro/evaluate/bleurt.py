"""BLEURT-20 (and its distilled D3/D6/D12) from the published PyTorch checkpoints.

The checkpoints made for the ``bleurt-pytorch`` package (``lucadiliello/BLEURT-20``,
``-D3``, ``-D6``, ``-D12`` on the Hugging Face hub) hold:
- ``config.json``: a BERT config with ``model_type: "bleurt"``, ``embedding_size`` (the
  factorised embedding width; null for the older BERT-based BLEURT checkpoints) and
  ``num_labels: 1``;
- ``pytorch_model.bin`` or ``model.safetensors``: weights named like BERT's with the prefix
  ``bleurt.`` (``bleurt.embeddings.*``, ``bleurt.encoder.layer.N.*``,
  ``bleurt.encoder.embedding_projection.*`` when the embeddings are factorised,
  ``bleurt.pooler.dense.*``) and the regression head ``classifier.*``;
- ``spm.model``: the SentencePiece model; ``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]`` are pieces of it.

That package no longer runs on current transformers and its tokenizer maps text to [UNK]
with current tokenizers, so this module loads the weights into transformers' own models
instead: RemBERT (factorised embeddings + ``embedding_hidden_mapping_in``, exactly BLEURT-20's
architecture) or BERT (no ``embedding_size``), each with a pooled 1-output regression head.
Tokenization follows the original TensorFlow BLEURT: SentencePiece pieces of reference and
candidate, ``[CLS] ref [SEP] cand [SEP]`` with segment ids 0/1, the longer side cut first to
``max_length``. "gelu" in these configs is the exact (erf) GELU, as in the reference PyTorch
implementation (bleurt-pytorch's ``BleurtIntermediate`` applies transformers' ``ACT2FN["gelu"]``),
whose published scores ``tests/evaluate/test_bleurt_reference.py`` checks against a real checkpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from scaling_repro.errors import UserError
from scaling_repro.evaluate.sharding import gather_in_order
from scaling_repro.ranks import ProcessInfo

CHECKPOINT_ENV = "SCALING_REPRO_BLEURT_CHECKPOINT"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
SPM_FILE = "spm.model"
HOW_TO_GET = (
    "download a PyTorch BLEURT-20 checkpoint, e.g. `hf download lucadiliello/BLEURT-20-D12 "
    "--local-dir ~/bleurt/BLEURT-20-D12` (or BLEURT-20, -D6, -D3), then set eval.bleurt_checkpoint "
    f"to that directory or export {CHECKPOINT_ENV}=<dir>"
)
MAX_UNK_FRACTION = 0.2
"""Loading fails when more than this share of the pieces of a multilingual probe text is
[UNK]: the symptom of a tokenizer that does not match the checkpoint."""
_PROBE_TEXT = (
    "The quick brown fox jumps over the lazy dog. Über den Wolken muss die Freiheit wohl grenzenlos sein. "
    "Le cœur a ses raisons que la raison ne connaît point. 今天天气很好，我们去公园散步吧。"
)


def resolve_checkpoint(configured: str | None) -> Path:
    """Return the BLEURT checkpoint directory: ``configured`` (``eval.bleurt_checkpoint``), else
    the ``SCALING_REPRO_BLEURT_CHECKPOINT`` environment variable; UserError when neither names
    a directory with ``config.json``, weights and ``spm.model``."""
    source = "eval.bleurt_checkpoint" if configured else CHECKPOINT_ENV
    value = configured or os.environ.get(CHECKPOINT_ENV)
    if not value:
        raise UserError(f"the bleurt metric needs a checkpoint and none is set: {HOW_TO_GET}")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise UserError(f"{source}={value!r} is not a directory; {HOW_TO_GET}")
    missing = [name for name in ("config.json", SPM_FILE) if not (path / name).is_file()]
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        raise UserError(
            f"{source}={value!r} is not a PyTorch BLEURT checkpoint (missing {', '.join(missing)}); {HOW_TO_GET}"
        )
    return path


@dataclass
class BleurtTokenizer:
    """SentencePiece tokenization and BLEURT's reference/candidate pair encoding."""

    processor: object  # sentencepiece.SentencePieceProcessor
    cls_id: int
    sep_id: int
    pad_id: int
    unk_id: int

    @classmethod
    def load(cls, spm_path: Path, pad_id: int) -> BleurtTokenizer:
        """Return the tokenizer of ``spm_path``; UserError if it lacks [CLS] or [SEP]."""
        try:
            import sentencepiece
        except ImportError as err:  # pragma: no cover - a declared dependency
            raise UserError("the bleurt metric needs the sentencepiece package: pip install sentencepiece") from err
        processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_path))
        ids = {}
        for piece in ("[CLS]", "[SEP]"):
            ids[piece] = processor.piece_to_id(piece)
            if ids[piece] == processor.unk_id() or processor.id_to_piece(ids[piece]) != piece:
                raise UserError(f"{spm_path} has no {piece} piece: not a BLEURT SentencePiece model")
        return cls(processor, ids["[CLS]"], ids["[SEP]"], pad_id, processor.unk_id())

    def pieces(self, text: str) -> list[int]:
        """Return the SentencePiece ids of ``text`` (no special tokens)."""
        return list(self.processor.encode(text, out_type=int))

    def unk_fraction(self, text: str) -> float:
        """Return the share of ``text``'s pieces that are [UNK]."""
        ids = self.pieces(text)
        return sum(i == self.unk_id for i in ids) / max(len(ids), 1)

    def encode_pair(self, reference: str, candidate: str, max_length: int) -> tuple[list[int], list[int]]:
        """Return ``([CLS] ref [SEP] cand [SEP]`` ids, segment ids``) at most ``max_length`` long,
        cutting the end of the longer side first (the original BLEURT's truncation)."""
        ref, cand = self.pieces(reference), self.pieces(candidate)
        while len(ref) + len(cand) > max_length - 3:
            (ref if len(ref) > len(cand) else cand).pop()
        ids = [self.cls_id, *ref, self.sep_id, *cand, self.sep_id]
        segments = [0] * (len(ref) + 2) + [1] * (len(cand) + 1)
        return ids, segments

    def batch(self, references: Sequence[str], candidates: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
        """Return right-padded ``input_ids``, ``attention_mask`` and ``token_type_ids``."""
        pairs = [self.encode_pair(r, c, max_length) for r, c in zip(references, candidates)]
        width = max(len(ids) for ids, _ in pairs)
        input_ids = torch.full((len(pairs), width), self.pad_id, dtype=torch.long)
        token_types = torch.zeros((len(pairs), width), dtype=torch.long)
        mask = torch.zeros((len(pairs), width), dtype=torch.long)
        for row, (ids, segments) in enumerate(pairs):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            token_types[row, : len(ids)] = torch.tensor(segments)
            mask[row, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": token_types}


def _transformers_model(config: dict) -> tuple[torch.nn.Module, dict[str, str]]:
    """Return an untrained transformers regression model shaped like the BLEURT ``config`` and
    the prefix renames from BLEURT weight names to its weight names."""
    shared = dict(
        vocab_size=config["vocab_size"],
        hidden_size=config["hidden_size"],
        num_hidden_layers=config["num_hidden_layers"],
        num_attention_heads=config["num_attention_heads"],
        intermediate_size=config["intermediate_size"],
        hidden_act=config.get("hidden_act", "gelu"),  # transformers' "gelu" is the exact one
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=config.get("max_position_embeddings", 512),
        type_vocab_size=config.get("type_vocab_size", 2),
        layer_norm_eps=config.get("layer_norm_eps", 1e-12),
        pad_token_id=config.get("pad_token_id", 0),
        num_labels=1,
    )
    if config.get("embedding_size") is None:
        from transformers import BertConfig, BertForSequenceClassification

        return BertForSequenceClassification(BertConfig(**shared, classifier_dropout=0.0)), {"bleurt.": "bert."}
    from transformers import RemBertConfig, RemBertForSequenceClassification

    rembert = RemBertConfig(
        **shared,
        input_embedding_size=config["embedding_size"],
        output_embedding_size=config["embedding_size"],  # the LM head's width; unused here
        classifier_dropout_prob=0.0,
        bos_token_id=None,
        eos_token_id=None,
    )
    renames = {
        "bleurt.encoder.embedding_projection.": "rembert.encoder.embedding_hidden_mapping_in.",
        "bleurt.": "rembert.",
    }
    return RemBertForSequenceClassification(rembert), renames


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(path / "model.safetensors"))
    return torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)


def _rename(name: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():  # first match wins: specific prefixes come first
        if name.startswith(old):
            return new + name[len(old) :]
    return name


def load_bleurt_model(path: Path) -> torch.nn.Module:
    """Return the regression model of the BLEURT checkpoint in ``path`` (eval mode, on CPU).

    Every weight of the model must come from the checkpoint and every checkpoint weight must
    be used (position-id buffers aside); anything else is a UserError naming the keys.
    """
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") not in ("bleurt", None):
        raise UserError(f"{path}/config.json has model_type {config.get('model_type')!r}, expected 'bleurt'")
    model, renames = _transformers_model(config)
    weights = {
        _rename(name, renames): tensor
        for name, tensor in _read_weights(path).items()
        if not name.endswith(("position_ids", "token_type_ids"))
    }
    result = model.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    if missing or result.unexpected_keys:
        raise UserError(
            f"{path} does not match a BLEURT model of its config.json: missing weights "
            f"{missing[:5]}, unexpected weights {result.unexpected_keys[:5]}"
        )
    return model.eval()


class BleurtScorer:
    """A loaded BLEURT checkpoint: ``score(references, candidates)`` -> one score per pair."""

    def __init__(self, model: torch.nn.Module, tokenizer: BleurtTokenizer, max_length: int = 512):
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def _score_batch(self, references: Sequence[str], candidates: Sequence[str]) -> list[float]:
        batch = self.tokenizer.batch(references, candidates, self.max_length)
        logits = self.model(**{k: v.to(self.device) for k, v in batch.items()}).logits
        return logits[:, 0].float().tolist()

    def score(
        self,
        references: Sequence[str],
        candidates: Sequence[str],
        batch_size: int = 32,
        process: ProcessInfo = ProcessInfo(),
    ) -> list[float]:
        """Return the BLEURT score of each (reference, candidate) pair, in input order; every
        process scores its share (length-sorted batches) and all return the full list."""
        if len(references) != len(candidates):
            raise ValueError(f"{len(references)} references but {len(candidates)} candidates")
        by_length = sorted(range(len(references)), key=lambda i: len(references[i]) + len(candidates[i]))
        mine = by_length[process.index :: process.count]
        local: list[tuple[int, float]] = []
        for start in range(0, len(mine), batch_size):
            indices = mine[start : start + batch_size]
            scores = self._score_batch([references[i] for i in indices], [candidates[i] for i in indices])
            local.extend(zip(indices, scores))
        return gather_in_order(local, len(references), process)


def load_bleurt(
    checkpoint: str | None = None, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> BleurtScorer:
    """Return a scorer for the checkpoint ``checkpoint`` (else ``$SCALING_REPRO_BLEURT_CHECKPOINT``).

    Raises UserError when the checkpoint is missing or malformed, or when its tokenizer turns
    more than ``MAX_UNK_FRACTION`` of a multilingual probe sentence into [UNK].
    """
    path = resolve_checkpoint(checkpoint)
    model = load_bleurt_model(path)
    pad_id = model.config.pad_token_id or 0
    tokenizer = BleurtTokenizer.load(path / SPM_FILE, pad_id=pad_id)
    unk = tokenizer.unk_fraction(_PROBE_TEXT)
    if unk > MAX_UNK_FRACTION:
        raise UserError(
            f"the tokenizer of {path} maps {unk:.0%} of a plain multilingual sentence to [UNK]; "
            f"{SPM_FILE} does not belong to this checkpoint"
        )
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    return BleurtScorer(model, tokenizer, max_length=model.config.max_position_embeddings)
