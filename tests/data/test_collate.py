"""Target-only labels, truncation and padding for decoder-only conditional LM training."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from scaling_repro.data.collate import (
    IGNORE_INDEX,
    collate_for_lm,
    encode_example,
    encode_examples,
    encode_prompt,
    encode_text,
    left_pad,
    pad_token_id,
)
from scaling_repro.data.types import Example, TaskInfo
from scaling_repro.errors import UserError
from scaling_repro.models.tokenizer import train_tokenizer

INFO = TaskInfo(
    "toy", "en", "de", ("bleu",), template="Translate: {source}\n", max_source_tokens=256, max_target_tokens=256
)
EXAMPLES = [
    Example("the small cat sleeps on the mat", "die kleine Katze schläft auf der Matte"),
    Example("a dog runs", "ein Hund läuft"),
    Example("the birds sing in the old tree today", "die Vögel singen heute im alten Baum"),
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    texts = [INFO.template.format(source=e.source) + e.target for e in EXAMPLES] * 20
    return train_tokenizer(texts, 400, tmp_path_factory.mktemp("tok"), full_byte_alphabet=True)


@pytest.fixture(scope="module")
def neox_like(tokenizer):
    """Like GPT-NeoX/Pythia: no pad token, no BOS token (EOS only)."""
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer, eos_token="</s>")


def _labelled(encoded) -> list[int]:
    return [t for t in encoded.labels if t != IGNORE_INDEX]


def test_labelled_tokens_decode_to_the_target(tokenizer):
    for example in EXAMPLES:
        encoded = encode_example(tokenizer, example, INFO)
        labelled = _labelled(encoded)
        assert labelled[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(labelled[:-1]) == example.target


def test_bos_and_prompt_are_masked_and_target_is_not(tokenizer):
    encoded = encode_example(tokenizer, EXAMPLES[0], INFO)
    assert encoded.input_ids[0] == tokenizer.bos_token_id
    assert encoded.labels[: encoded.prompt_length] == [IGNORE_INDEX] * encoded.prompt_length
    assert encoded.labels[encoded.prompt_length :] == encoded.input_ids[encoded.prompt_length :]
    prompt_text = tokenizer.decode(encoded.input_ids[1 : encoded.prompt_length])
    assert prompt_text == INFO.template.format(source=EXAMPLES[0].source)


def test_prompt_is_the_prefix_generation_conditions_on(tokenizer):
    for example in EXAMPLES:
        encoded = encode_example(tokenizer, example, INFO, max_source_tokens=8)
        assert (
            encode_prompt(tokenizer, example, INFO, max_source_tokens=8) == encoded.input_ids[: encoded.prompt_length]
        )


def test_long_source_is_cut_but_template_survives(tokenizer):
    long = Example(" ".join(["the small cat sleeps"] * 40), "ein Hund")
    encoded = encode_example(tokenizer, long, INFO, max_source_tokens=12)
    assert encoded.prompt_length == 12
    prompt = tokenizer.decode(encoded.input_ids[1:12])
    assert prompt.startswith("Translate: the") and prompt.endswith("\n")
    assert tokenizer.decode(_labelled(encoded)[:-1]) == "ein Hund"


def test_long_target_is_cut_and_keeps_eos(tokenizer):
    long = Example("a dog runs", " ".join(["die kleine Katze"] * 40))
    encoded = encode_example(tokenizer, long, INFO, max_target_tokens=10)
    labelled = _labelled(encoded)
    assert len(labelled) == 10 and labelled[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(labelled[:-1]) in long.target


def test_task_lengths_apply_when_no_override(tokenizer):
    short_info = TaskInfo("toy", "en", "de", ("bleu",), template="{source}\n", max_source_tokens=5, max_target_tokens=4)
    long = Example(" ".join(["the cat"] * 20), " ".join(["die Katze"] * 20))
    encoded = encode_example(tokenizer, long, short_info)
    assert encoded.prompt_length == 5
    assert len(encoded.input_ids) - encoded.prompt_length == 4


def test_template_longer_than_limit_is_a_user_error(tokenizer):
    with pytest.raises(UserError, match="max_source_tokens=3"):
        encode_example(tokenizer, EXAMPLES[0], INFO, max_source_tokens=3)


@pytest.mark.parametrize("chunk", [2, 10_000])
def test_batched_encoding_equals_one_by_one(tokenizer, monkeypatch, chunk):
    monkeypatch.setattr("scaling_repro.data.collate._CHUNK", chunk)
    batched = encode_examples(tokenizer, EXAMPLES, INFO, max_source_tokens=9, max_target_tokens=7)
    assert batched == [encode_example(tokenizer, e, INFO, 9, 7) for e in EXAMPLES]


def test_encoding_a_split_logs_its_token_counts(tokenizer, caplog):
    with caplog.at_level(logging.INFO, logger="scaling_repro.data.collate"):
        encoded = encode_examples(tokenizer, EXAMPLES, INFO, max_target_tokens=2, split="dev")
    total = sum(len(e.input_ids) for e in encoded)
    message = caplog.records[-1].getMessage()
    assert "toy dev: 3 examples" in message and f"{total} tokens" in message
    assert "3 targets (> 2 tokens)" in message


def test_tokenizer_without_pad_or_bos_pads_with_eos_and_adds_no_bos(neox_like):
    assert neox_like.pad_token_id is None and neox_like.bos_token_id is None
    assert pad_token_id(neox_like) == neox_like.eos_token_id
    encoded = encode_example(neox_like, EXAMPLES[1], INFO)
    assert encoded.input_ids[: encoded.prompt_length] == encode_text(neox_like, "Translate: a dog runs") + encode_text(
        neox_like, "\n"
    )
    assert neox_like.decode(_labelled(encoded)[:-1]) == EXAMPLES[1].target


def test_encode_text_adds_bos_and_truncates(tokenizer):
    ids = encode_text(tokenizer, "the small cat sleeps on the mat", max_tokens=3)
    assert len(ids) == 3 and ids[0] == tokenizer.bos_token_id
    assert encode_text(tokenizer, "a dog", add_bos=False)[0] != tokenizer.bos_token_id


def test_collate_pads_right_and_masks_padding_in_labels(tokenizer):
    encoded = encode_examples(tokenizer, EXAMPLES, INFO, log_counts=False)
    batch = collate_for_lm(encoded, pad_id=pad_token_id(tokenizer))
    width = max(len(e.input_ids) for e in encoded)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (3, width)
    for row, example in enumerate(encoded):
        n = len(example.input_ids)
        assert batch["input_ids"][row, :n].tolist() == example.input_ids
        assert batch["labels"][row, :n].tolist() == example.labels
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (width - n)
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
        assert (batch["input_ids"][row, n:] == tokenizer.pad_token_id).all()


def test_left_pad_aligns_every_prompt_to_the_right():
    input_ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert input_ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert input_ids.dtype == mask.dtype == torch.long
