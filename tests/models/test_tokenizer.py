"""Training small tokenizers (saved in HF format) and loading tokenizers with clear errors."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from scaling_repro.errors import UserError
from scaling_repro.models.tokenizer import load_tokenizer, train_tokenizer

TEXTS = ["the small cat sleeps on the mat", "die kleine Katze schläft", "a dog runs home", "ein Hund läuft"] * 30


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_trained_tokenizer_has_special_tokens_and_reloads_identically(tmp_path, kind):
    tokenizer = train_tokenizer(TEXTS, 120, tmp_path / "tok", kind=kind)
    assert [tokenizer.pad_token, tokenizer.bos_token, tokenizer.eos_token, tokenizer.unk_token] == [
        "<pad>",
        "<s>",
        "</s>",
        "<unk>",
    ]
    assert len(tokenizer) <= 120
    for loaded in (load_tokenizer(str(tmp_path / "tok")), AutoTokenizer.from_pretrained(tmp_path / "tok")):
        assert loaded("a dog runs home")["input_ids"] == tokenizer("a dog runs home")["input_ids"]
        assert loaded.eos_token_id == tokenizer.eos_token_id and loaded.pad_token_id == tokenizer.pad_token_id


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_trained_tokenizer_decodes_text_back(tmp_path, kind):
    tokenizer = train_tokenizer(TEXTS, 120, tmp_path / "tok", kind=kind)
    ids = tokenizer("die kleine Katze läuft", add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == "die kleine Katze läuft"


def test_newline_separator_is_in_the_vocabulary_even_if_unseen(tmp_path):
    tokenizer = train_tokenizer(TEXTS, 120, tmp_path / "tok")
    assert tokenizer.unk_token_id not in tokenizer("a dog\nein Hund", add_special_tokens=False)["input_ids"]


def test_unseen_characters_are_unknown_unless_full_byte_alphabet(tmp_path):
    small = train_tokenizer(TEXTS, 120, tmp_path / "small")
    full = train_tokenizer(TEXTS, 400, tmp_path / "full", full_byte_alphabet=True)
    assert small.unk_token_id in small("Ωmega", add_special_tokens=False)["input_ids"]
    assert full.decode(full("Ωmega", add_special_tokens=False)["input_ids"]) == "Ωmega"


def test_training_again_replaces_the_saved_tokenizer(tmp_path):
    train_tokenizer(TEXTS, 120, tmp_path / "tok")
    second = train_tokenizer(TEXTS[:2] * 10, 60, tmp_path / "tok")
    assert len(load_tokenizer(str(tmp_path / "tok"))) == len(second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]


def test_bad_requests_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="kind 'wordpiece'"):
        train_tokenizer(TEXTS, 120, tmp_path / "tok", kind="wordpiece")
    with pytest.raises(UserError, match="empty"):
        train_tokenizer(["", "  "], 120, tmp_path / "tok")
    with pytest.raises(UserError, match="does not exist"):
        load_tokenizer(str(tmp_path / "missing"))


def test_hub_tokenizer_offline_is_a_user_error_naming_it():
    with pytest.raises(UserError, match="EleutherAI/pythia-70m.*HF_HUB_OFFLINE"):
        load_tokenizer("EleutherAI/pythia-70m", revision="step1000")


@pytest.mark.parametrize("value", ["true", "YES", "on"])
def test_hub_tokenizer_offline_hint_follows_any_spelling_of_the_flag(monkeypatch, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(UserError, match="disabled by HF_HUB_OFFLINE"):
        load_tokenizer("EleutherAI/pythia-70m", revision="step1000")
