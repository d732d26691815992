"""Offline stand-ins for a plan's hub data and hub models, for smoke runs and tests of a plan.

- a corpus: synthetic translation pairs (:mod:`scaling_repro.data.synthetic`) written in the
  ``task.data_dir`` layout of WMT14 En-De (:mod:`scaling_repro.data.hub`): the train and
  validation parquet files, the sacrebleu test sets newstest2020-2022 and FLORES+ devtest files
  whose {fr, zh, hi, tr, pl} -> de pairs are the synthetic task's zero-shot pairs;
- a model: a tiny random GPT-NeoX (Pythia's architecture) saved as a local directory with one
  subfolder per revision (a different random initialisation each), the tokenizer at its root,
  trained on the stand-in corpus. Name the directory ``pythia-<size>`` so the loader applies
  Pythia's token rule (``stepN`` = N x 2,097,152 tokens) to it as to the hub models.
"""

from __future__ import annotations

from pathlib import Path

from scaling_repro.config.study_plan import StandIn
from scaling_repro.fileio import atomic_write_text

DONE_FILE = ".stand_in_done"
CORPUS_PARAMS = {"train_pool": 600, "dev_size": 40, "test_size": 30, "zero_shot_size": 30, "language_seed": 7}
TEST_YEARS = {"wmt20": "ref", "wmt21": "ref-A", "wmt22": "ref-A"}
ZERO_SHOT_CODES = {"fr": "fra_Latn", "zh": "cmn_Hans", "hi": "hin_Deva", "tr": "tur_Latn", "pl": "pol_Latn"}
TOKENIZER_VOCAB = 400


def write_stand_in_corpus(root: Path) -> bool:
    """Write the stand-in corpus under ``root`` unless it is complete; return whether it wrote."""
    import pandas as pd

    from scaling_repro.data.synthetic import build_splits, synthetic_params

    if (root / DONE_FILE).is_file():
        return False
    splits = build_splits(synthetic_params(CORPUS_PARAMS))
    wmt = root / "wmt14" / "de-en"
    wmt.mkdir(parents=True, exist_ok=True)
    for split, pairs in (("train", splits.train_pool), ("validation", splits.dev)):
        rows = [{"de": ex.target, "en": ex.source} for ex in pairs]
        pd.DataFrame({"translation": rows}).to_parquet(wmt / f"{split}-00000-of-00001.parquet")
    tests = list(splits.test.values())
    for i, (year, ref) in enumerate(TEST_YEARS.items()):
        folder = root / "sacrebleu" / year
        folder.mkdir(parents=True, exist_ok=True)
        pairs = tests[i % len(tests)]
        (folder / f"{year}.en-de.src").write_text("".join(ex.source + "\n" for ex in pairs), encoding="utf-8")
        (folder / f"{year}.en-de.{ref}").write_text("".join(ex.target + "\n" for ex in pairs), encoding="utf-8")
    zero = next(iter(splits.zero_shot.values()))
    ids = [str(i) for i in range(len(zero))]
    flores = root / "flores_plus" / "devtest"
    flores.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": ids, "text": [ex.target for ex in zero]}).to_parquet(flores / "deu_Latn.parquet")
    for code in ZERO_SHOT_CODES.values():
        pd.DataFrame({"id": ids, "text": [ex.source for ex in zero]}).to_parquet(flores / f"{code}.parquet")
    atomic_write_text(root / DONE_FILE, "complete\n")
    return True


def corpus_texts() -> list[str]:
    """Return the sentences of the stand-in corpus (both sides) to train a stand-in tokenizer on."""
    from scaling_repro.data.synthetic import build_splits, synthetic_params

    splits = build_splits(synthetic_params(CORPUS_PARAMS))
    pairs = [*splits.train_pool, *splits.dev, *next(iter(splits.zero_shot.values()))]
    return [text for ex in pairs for text in (ex.source, ex.target)]


def stand_in_complete(root: Path, revisions: list[str]) -> bool:
    """Return whether the stand-in model at ``root`` has every revision."""
    return (root / DONE_FILE).is_file() and all((root / r / "config.json").is_file() for r in revisions)


def write_stand_in_model(root: Path, revisions: list[str], shape: StandIn) -> bool:
    """Write a tiny random GPT-NeoX at ``root`` with one subfolder per revision unless complete;
    return whether it wrote."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from scaling_repro.models.tokenizer import load_tokenizer, train_tokenizer

    if stand_in_complete(root, revisions):
        return False
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "tokenizer.json").is_file():
        train_tokenizer(corpus_texts(), TOKENIZER_VOCAB, root / "_tokenizer")
        load_tokenizer(str(root / "_tokenizer")).save_pretrained(root)
    tokenizer = load_tokenizer(str(root))
    config = GPTNeoXConfig(
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=4 * shape.hidden_size,
        max_position_embeddings=512,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    for seed, revision in enumerate(revisions):
        torch.manual_seed(seed)
        GPTNeoXForCausalLM(config).save_pretrained(root / revision)
    atomic_write_text(root / DONE_FILE, "complete\n")
    return True
