"""load_task: the offline task end to end, the local task, overrides, caps and errors."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from scaling_repro.config.recipe import LocalFiles, TaskConfig
from scaling_repro.data.collate import IGNORE_INDEX, collate_for_lm, encode_examples, pad_token_id
from scaling_repro.data.synthetic import pretraining_corpus
from scaling_repro.data.tasks import load_task, task_params
from scaling_repro.data.types import Example
from scaling_repro.errors import UserError
from scaling_repro.models.tokenizer import train_tokenizer

SMALL = {"train_pool": 3000, "dev_size": 200, "test_size": 150, "zero_shot_size": 100}


def _synthetic(**fields) -> TaskConfig:
    return TaskConfig(name="synthetic_mt", params=SMALL, **fields)


def _write_jsonl(path, pairs, source="source", target="target"):
    path.write_text("".join(json.dumps({source: s, target: t}) + "\n" for s, t in pairs), encoding="utf-8")
    return str(path)


def test_synthetic_task_splits_sizes_and_seeded_subset():
    data = load_task(_synthetic(train_examples=300, seed=1))
    assert (len(data.train), len(data.dev)) == (300, 200)
    assert {name: len(ex) for name, ex in data.test.items()} == {"test_a": 150, "test_b": 150}
    assert data.zero_shot == {}
    assert load_task(_synthetic(train_examples=100, seed=1)).train == data.train[:100]
    assert load_task(_synthetic(train_examples=100, seed=2)).train != data.train[:100]


def test_zero_shot_sets_are_loaded_on_request():
    data = load_task(_synthetic(train_examples=10), zero_shot=True)
    assert list(data.zero_shot) == ["qac-qab"] and len(data.zero_shot["qac-qab"]) == 100


def test_caps_take_the_same_fixed_subset_for_every_seed():
    a = load_task(_synthetic(train_examples=10, seed=0, dev_examples=50, test_examples=20))
    b = load_task(_synthetic(train_examples=10, seed=5, dev_examples=50, test_examples=20))
    assert len(a.dev) == 50 and a.dev == b.dev
    assert {k: len(v) for k, v in a.test.items()} == {"test_a": 20, "test_b": 20} and a.test == b.test


def test_recipe_lengths_override_the_tasks():
    data = load_task(_synthetic(train_examples=10, max_source_tokens=32, max_target_tokens=24))
    assert (data.info.max_source_tokens, data.info.max_target_tokens) == (32, 24)
    default = load_task(_synthetic(train_examples=10)).info
    assert (default.max_source_tokens, default.max_target_tokens) == (64, 64)


def test_train_examples_larger_than_the_pool_names_both_numbers():
    with pytest.raises(UserError, match="task.train_examples=3001 is larger than the 3000 examples"):
        load_task(_synthetic(train_examples=3001))


def test_unknown_task_params_name_the_field():
    with pytest.raises(UserError, match=r"task.params.pool is not an option of task 'synthetic_mt'"):
        load_task(TaskConfig(name="synthetic_mt", params={"pool": 10}))
    with pytest.raises(UserError, match=r"task.params.languages.0='it'"):
        load_task(TaskConfig(name="mlsum", params={"languages": ["it"]}))


def test_offline_task_end_to_end_trains_a_tiny_lm_on_target_tokens(tmp_path):
    """Synthetic data -> tokenizer trained on the pretraining corpus -> encoded batches with
    target-only labels -> a tiny GPT-2 whose loss on those labels drops."""
    data = load_task(_synthetic(train_examples=64, seed=0))
    tokenizer = train_tokenizer(pretraining_corpus(2000, params=SMALL), 300, tmp_path / "tok")
    encoded = encode_examples(tokenizer, data.train, data.info, split="train")
    batch = collate_for_lm(encoded[:16], pad_token_id(tokenizer))
    for row, example in enumerate(data.train[:16]):
        labels = [t for t in batch["labels"][row].tolist() if t != IGNORE_INDEX]
        assert tokenizer.decode(labels[:-1]) == example.target
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=1, n_head=2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_local_task_reads_its_files_with_params(tmp_path):
    files = LocalFiles(
        train=_write_jsonl(tmp_path / "train.jsonl", [(f"s{i}", f"t{i}") for i in range(30)], "en", "de"),
        dev=_write_jsonl(tmp_path / "dev.jsonl", [("d", "e")], "en", "de"),
        test={"news": _write_jsonl(tmp_path / "test.jsonl", [("x", "y")], "en", "de")},
        source_column="en",
        target_column="de",
    )
    cfg = TaskConfig(
        name="local",
        files=files,
        train_examples=10,
        seed=3,
        params={"source_lang": "en", "target_lang": "de", "template": "EN: {source}\nDE: ", "metrics": ["chrf"]},
    )
    data = load_task(cfg)
    assert len(data.train) == 10 and data.dev == [Example("d", "e")] and data.test == {"news": [Example("x", "y")]}
    assert (data.info.source_lang, data.info.template, data.info.metrics) == ("en", "EN: {source}\nDE: ", ("chrf",))


def test_local_task_needs_train_and_dev_files(tmp_path):
    with pytest.raises(UserError, match="task.files.train and task.files.dev"):
        load_task(TaskConfig(name="local"))
    with pytest.raises(UserError, match=r"task.params.template=.*exactly once"):
        load_task(TaskConfig(name="local", params={"template": "no slot"}))


def test_local_train_duplicates_are_dropped_with_a_count(tmp_path, caplog):
    train = _write_jsonl(tmp_path / "train.jsonl", [("a", "b"), ("a", "b"), ("c", "d")])
    dev = _write_jsonl(tmp_path / "dev.jsonl", [("a", "b"), ("a", "b")])
    data = load_task(TaskConfig(name="local", files=LocalFiles(train=train, dev=dev)))
    assert sorted(e.source for e in data.train) == ["a", "c"]
    assert len(data.dev) == 2  # evaluation sets keep repeated sentences
    assert "1 duplicate pairs" in caplog.text


def _local_with_duplicates(tmp_path, **fields) -> TaskConfig:
    """A local task of 10 raw pairs, 4 of them repeats (6 distinct)."""
    pairs = [(f"s{i % 6}", f"t{i % 6}") for i in range(10)]
    train, dev = _write_jsonl(tmp_path / "train.jsonl", pairs), _write_jsonl(tmp_path / "dev.jsonl", [("a", "b")])
    return TaskConfig(name="local", files=LocalFiles(train=train, dev=dev), **fields)


def test_local_task_with_duplicates_trains_on_its_raw_pool_size_without_dedupe(tmp_path):
    data = load_task(_local_with_duplicates(tmp_path, train_examples=10, params={"dedupe": False}))
    assert len(data.train) == 10 and len(set(data.train)) == 6


def test_local_task_dedupes_by_default_and_a_size_beyond_it_names_the_pool_and_the_options(tmp_path):
    message = r"=8 needs more examples than the 10 of local train \(0 empty and 4 duplicate ones skipped\); set "
    with pytest.raises(UserError, match=message + r"task.params.dedupe=false.*task.params.short_pool=whole_pool"):
        load_task(_local_with_duplicates(tmp_path, train_examples=8))


def test_size_beyond_the_raw_pool_is_an_error_naming_its_size(tmp_path):
    with pytest.raises(UserError, match=r"task.train_examples=11 is larger than the 10 examples of local train"):
        load_task(_local_with_duplicates(tmp_path, train_examples=11, params={"dedupe": False}))


def test_short_pool_whole_pool_trains_on_every_usable_example(tmp_path, caplog):
    data = load_task(_local_with_duplicates(tmp_path, train_examples=8, params={"short_pool": "whole_pool"}))
    assert len(data.train) == 6  # the record's finetune_examples is len(train)
    assert "task.train_examples=8 is more than its 6 usable examples" in caplog.text


def test_the_papers_tasks_count_raw_pairs_and_local_files_drop_repeats_by_default():
    defaults = {name: task_params(TaskConfig(name=name)).dedupe for name in ("wmt14_en_de", "wmt19_en_zh", "mlsum")}
    assert defaults == {"wmt14_en_de": False, "wmt19_en_zh": False, "mlsum": False}
    assert task_params(TaskConfig(name="local")).dedupe is True


def test_files_override_splits_of_a_named_task(tmp_path):
    train = _write_jsonl(tmp_path / "train.jsonl", [(f"s{i}", f"t{i}") for i in range(5)])
    test = _write_jsonl(tmp_path / "test.jsonl", [("x", "y")])
    data = load_task(_synthetic(files=LocalFiles(train=train, test={"mine": test})))
    assert sorted(e.source for e in data.train) == [f"s{i}" for i in range(5)]
    assert data.test == {"mine": [Example("x", "y")]} and len(data.dev) == 200


def test_every_task_a_recipe_may_name_has_a_loader():
    from scaling_repro.config.recipe import TASK_NAMES
    from scaling_repro.data.tasks import LOADERS

    assert set(LOADERS) == set(TASK_NAMES)
