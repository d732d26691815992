"""The pretraining corpus: documents from a source, the tokenizer trained on them once for the
whole ladder, and packing into fixed-length sequences."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scaling_repro.errors import UserError
from scaling_repro.pretrain.recipe import CorpusConfig, PretrainRecipe
from scaling_repro.ranks import ProcessInfo, current_process


def _synthetic_documents(corpus: CorpusConfig, split: str) -> list[str]:
    from scaling_repro.data.synthetic import pretraining_corpus

    count, seed = (corpus.documents, corpus.seed) if split == "train" else (corpus.dev_documents, corpus.seed + 7919)
    return pretraining_corpus(
        count,
        seed=seed,
        parallel_share=corpus.parallel_share,
        sister_share=corpus.sister_share,
        params=corpus.params,
        parallel_templates=corpus.parallel_templates,
    )


def _text_documents(corpus: CorpusConfig, split: str) -> list[str]:
    if not corpus.files:
        raise UserError("corpus.files: the 'text' corpus needs at least one file (one document per line)")
    documents: list[str] = []
    for name in corpus.files:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"corpus.files: {name!r} does not exist")
        documents += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(documents) <= corpus.dev_documents:
        raise UserError(
            f"corpus.files hold {len(documents)} documents; need more than dev_documents={corpus.dev_documents}"
        )
    dev, train = documents[-corpus.dev_documents :], documents[: -corpus.dev_documents]
    return train[: corpus.documents] if split == "train" else dev


CORPUS_SOURCES: dict[str, Callable[[CorpusConfig, str], list[str]]] = {
    "synthetic": _synthetic_documents,
    "text": _text_documents,
}
"""corpus.source -> function(corpus config, "train" | "dev") returning documents."""


def pack_documents(documents: list[list[int]], seq_len: int, bos: int | None, eos: int) -> list:
    """Return EncodedExamples of exactly ``seq_len`` tokens: ``[bos] doc [eos]`` concatenated
    and cut (the remainder is dropped); every token is a label."""
    from scaling_repro.data.collate import EncodedExample

    stream: list[int] = []
    for ids in documents:
        stream += ([bos] if bos is not None else []) + ids + [eos]
    return [
        EncodedExample(input_ids=chunk, labels=list(chunk), prompt_length=0)
        for chunk in (stream[i : i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len))
    ]


def get_tokenizer(recipe: PretrainRecipe, train_documents: list[str]):
    """Return the recipe's tokenizer: loaded from ``tokenizer.path``, or trained once on the
    corpus and kept in ``output_dir/tokenizer`` (reused when present)."""
    from scaling_repro.models.tokenizer import load_tokenizer, train_tokenizer

    if recipe.tokenizer.path:
        return load_tokenizer(recipe.tokenizer.path)
    out = Path(recipe.output_dir) / "tokenizer"
    if (out / "tokenizer.json").is_file():
        return load_tokenizer(str(out))
    if current_process() != ProcessInfo():
        raise UserError(
            f"multi-process pretraining needs the tokenizer first: run `scaling-repro pretrain` once "
            f"in one process with token_budget small, or set tokenizer.path ({out} is missing)"
        )
    spec = recipe.tokenizer
    return train_tokenizer(train_documents[: spec.train_documents], spec.vocab_size, out, kind=spec.kind)
