"""load_base_model: config names (random or our checkpoints), local HF directories with
revision subfolders, hub ids offline, and where pretrain_tokens comes from."""

import logging

import pytest
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from scaling_repro.config.recipe import ModelConfig
from scaling_repro.errors import UserError
from scaling_repro.models.load import (
    META_FILE,
    CheckpointMeta,
    load_base_model,
    read_checkpoint_meta,
    write_checkpoint_meta,
)
from scaling_repro.models.pretrain_tokens import PYTHIA_TOKENS_PER_STEP, pythia_pretrain_tokens
from tests.helpers.models_testing import batch, make_tokenizer, tiny_model


def logits(model, ids=None):
    with torch.no_grad():
        return model(input_ids=batch() if ids is None else ids).logits


def save_checkpoint(directory, name="tiny-xs", pretrain_tokens=1000, with_tokenizer=True):
    """Our pretraining's layout: save_pretrained weights, tokenizer and metadata."""
    model = tiny_model(name)
    model.save_pretrained(directory)
    if with_tokenizer:
        make_tokenizer().save_pretrained(directory)
    write_checkpoint_meta(directory, CheckpointMeta(config_name=name, pretrain_tokens=pretrain_tokens))
    return model


def save_pythia_like(directory):
    """A tiny GPT-NeoX (Pythia's class) with its tokenizer, as `hf download --local-dir` leaves it."""
    torch.manual_seed(0)
    config = GPTNeoXConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    model = GPTNeoXForCausalLM(config)
    model.save_pretrained(directory)
    make_tokenizer().save_pretrained(directory)
    return model


def test_random_init_takes_its_vocabulary_from_the_tokenizer():
    loaded = load_base_model(ModelConfig(name="tiny-s", init="random"), make_tokenizer(48))
    assert loaded.model.get_input_embeddings().num_embeddings == 48
    assert loaded.model.config.num_key_value_heads == 1
    assert loaded.model_params_counted == "non_embedding"
    assert loaded.model_params == sum(p.numel() for p in loaded.model.parameters()) - 48 * 64
    assert loaded.pretrain_tokens == 0


def test_random_init_is_reproducible_from_its_seed():
    cfg, tokenizer = ModelConfig(name="tiny-xs", init="random"), make_tokenizer()
    first, again, other = (load_base_model(cfg, tokenizer, seed=s).model for s in (1, 1, 2))
    assert torch.equal(logits(first), logits(again))
    assert not torch.equal(logits(first), logits(other))


def test_random_init_without_a_tokenizer_is_a_user_error():
    with pytest.raises(UserError, match="model.tokenizer"):
        load_base_model(ModelConfig(name="tiny-xs", init="random"))


def test_config_name_without_weights_is_a_user_error():
    with pytest.raises(UserError, match="model.path"):
        load_base_model(ModelConfig(name="tiny-xs"), make_tokenizer())


def test_our_checkpoint_loads_with_its_metadata_tokens_and_tokenizer(tmp_path):
    saved = save_checkpoint(tmp_path / "ckpt", pretrain_tokens=123_456)
    loaded = load_base_model(ModelConfig(name="tiny-xs", path=str(tmp_path / "ckpt")))
    assert loaded.pretrain_tokens == 123_456
    assert len(loaded.tokenizer) == 64
    assert torch.equal(logits(loaded.model), logits(saved))
    assert read_checkpoint_meta(tmp_path / "ckpt").config_name == "tiny-xs"


def test_revision_of_a_local_path_is_its_subfolder(tmp_path):
    save_checkpoint(tmp_path / "run" / "tokens-1000", pretrain_tokens=1000)
    save_checkpoint(tmp_path / "run" / "tokens-2000", pretrain_tokens=2000)
    cfg = ModelConfig(name="tiny-xs", path=str(tmp_path / "run"), revision="tokens-2000")
    assert load_base_model(cfg).pretrain_tokens == 2000


def test_recipe_pretrain_tokens_override_the_metadata_with_a_warning(tmp_path, caplog):
    save_checkpoint(tmp_path, pretrain_tokens=1000)
    with caplog.at_level(logging.WARNING):
        loaded = load_base_model(ModelConfig(name="tiny-xs", path=str(tmp_path), pretrain_tokens=5000))
    assert loaded.pretrain_tokens == 5000
    assert "overrides 1000" in caplog.text


def test_checkpoint_of_another_config_is_a_user_error(tmp_path):
    save_checkpoint(tmp_path, name="tiny-s")
    with pytest.raises(UserError, match="tiny-s"):
        load_base_model(ModelConfig(name="tiny-xs", path=str(tmp_path)))


def test_pythia_like_local_directory_loads_a_revision_subfolder(tmp_path):
    saved = save_pythia_like(tmp_path / "pythia-tiny" / "step1000")
    loaded = load_base_model(ModelConfig(name=str(tmp_path / "pythia-tiny"), revision="step1000"))
    assert type(loaded.model).__name__ == "GPTNeoXForCausalLM"
    assert torch.equal(logits(loaded.model), logits(saved))
    assert loaded.pretrain_tokens == 1000 * PYTHIA_TOKENS_PER_STEP
    assert loaded.model_params == sum(p.numel() for p in saved.parameters()) - 2 * 64 * 16  # untied in/out
    assert loaded.source.endswith("step1000")


def test_missing_revision_subfolder_names_the_available_ones(tmp_path):
    save_pythia_like(tmp_path / "pythia-tiny" / "step1000")
    with pytest.raises(UserError, match="available: step1000"):
        load_base_model(ModelConfig(name=str(tmp_path / "pythia-tiny"), revision="step2000"))


def test_local_directory_without_metadata_has_unknown_pretrain_tokens(tmp_path, caplog):
    save_pythia_like(tmp_path / "my-model")
    with caplog.at_level(logging.WARNING):
        loaded = load_base_model(ModelConfig(name=str(tmp_path / "my-model")))
    assert loaded.pretrain_tokens is None
    assert "set model.pretrain_tokens" in caplog.text


def test_tokenizer_larger_than_the_embeddings_is_a_user_error(tmp_path):
    save_checkpoint(tmp_path)
    with pytest.raises(UserError, match="100 entries"):
        load_base_model(ModelConfig(name="tiny-xs", path=str(tmp_path)), make_tokenizer(100))


def test_offline_hub_id_is_a_user_error_saying_how_to_get_it():
    cfg = ModelConfig(name="EleutherAI/pythia-14m-not-cached", revision="step1000")
    with pytest.raises(UserError) as err:
        load_base_model(cfg)
    message = str(err.value)
    assert "EleutherAI/pythia-14m-not-cached" in message and "step1000" in message
    assert "hf download" in message and "model.name" in message


@pytest.mark.parametrize(
    "name, revision, tokens",
    [
        ("EleutherAI/pythia-160m", "step1000", 1000 * 2_097_152),
        ("EleutherAI/pythia-1b-deduped", "step0", 0),
        ("EleutherAI/pythia-160m", None, 143_000 * 2_097_152),
        ("EleutherAI/pythia-160m", "main", 143_000 * 2_097_152),
        ("EleutherAI/pythia-160m", "a1b2c3", None),
        ("gpt2", None, None),
    ],
)
def test_pythia_rule_is_step_times_2097152_tokens(name, revision, tokens):
    assert pythia_pretrain_tokens(name, revision) == tokens


def test_metadata_file_is_json_with_pretrain_tokens(tmp_path):
    path = write_checkpoint_meta(tmp_path, CheckpointMeta(config_name="tiny-s", pretrain_tokens=42, step=3))
    assert path.name == META_FILE
    assert read_checkpoint_meta(tmp_path) == CheckpointMeta(config_name="tiny-s", pretrain_tokens=42, step=3)


def test_invalid_metadata_is_a_user_error_naming_the_field(tmp_path):
    (tmp_path / META_FILE).write_text('{"config_name": "tiny-s"}')
    with pytest.raises(UserError, match="pretrain_tokens: Field required"):
        read_checkpoint_meta(tmp_path)


def test_random_init_of_a_local_architecture_has_zero_pretrain_tokens(tmp_path):
    saved = save_pythia_like(tmp_path / "pythia-tiny")
    loaded = load_base_model(ModelConfig(name=str(tmp_path / "pythia-tiny"), init="random"), seed=5)
    assert loaded.pretrain_tokens == 0
    assert type(loaded.model) is type(saved)
    assert not torch.equal(logits(loaded.model), logits(saved))
