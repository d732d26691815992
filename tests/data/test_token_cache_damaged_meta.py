"""A token cache whose meta.json cannot be used (nested too deep for the JSON parser, or not
a JSON object) is damaged: it is encoded again with a warning, as the module promises."""

from __future__ import annotations

import logging

import pytest

from scaling_repro.config.recipe import TaskConfig
from scaling_repro.data.synthetic import pretraining_corpus
from scaling_repro.data.tasks import load_task
from scaling_repro.data.token_cache import META_FILE, cached_encoding
from scaling_repro.models.tokenizer import load_tokenizer, train_tokenizer

SMALL = {"train_pool": 2000, "dev_size": 20, "test_size": 10, "zero_shot_size": 10}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(pretraining_corpus(1000, parallel_share=0.3), 200, out)
    return load_tokenizer(str(out))


@pytest.mark.parametrize("damage", ['{"a":' * 100_000, "[" * 100_000, "[]", '"meta"'])
def test_an_unusable_meta_json_is_encoded_again_with_a_warning(damage, tokenizer, tmp_path, caplog):
    task = load_task(TaskConfig(name="synthetic_mt", train_examples=50, seed=1, params=SMALL))
    first = cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    expected = [(e.input_ids, e.prompt_length) for e in first]
    (directory,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (directory / META_FILE).write_text(damage)
    with caplog.at_level(logging.WARNING, logger="scaling_repro"):
        again = cached_encoding(tmp_path, tokenizer, task.train, task.info, split="train")
    assert [(e.input_ids, e.prompt_length) for e in again] == expected
    assert any(f"token cache {directory} is unusable" in r.getMessage() for r in caplog.records)
    assert (directory / META_FILE).read_text().startswith("{")  # rebuilt
