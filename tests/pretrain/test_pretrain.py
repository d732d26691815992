"""Pretraining of tiny base models: checkpoints at token counts with pretrain_tokens metadata."""

from __future__ import annotations

import json

import pytest

from scaling_repro.cli import main
from scaling_repro.config.recipe import ModelConfig
from scaling_repro.errors import RecipeError
from scaling_repro.pretrain.corpus import pack_documents
from scaling_repro.pretrain.recipe import PretrainRecipe, load_pretrain_recipe
from scaling_repro.pretrain.run import pretrain
from tests.helpers.paths import REPO

RECIPE = REPO / "recipes" / "tiny" / "pretrain.yaml"
SMALL = [
    "models=[tiny-xs]",
    "corpus.documents=1500",
    "corpus.dev_documents=60",
    "tokenizer.vocab_size=128",
    "seq_len=32",
    "batch_size=8",
    "token_budget=8192",
    "checkpoint_tokens=[0, 4096]",
    "train.eval_every=16",
    "train.warmup_steps=2",
]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained")
    assert main(["pretrain", str(RECIPE), f"output_dir={out}", *SMALL]) == 0
    return out / "tiny-xs"


def test_checkpoints_at_each_token_count_carry_pretrain_tokens(pretrained):
    revisions = sorted(p.name for p in pretrained.glob("tokens-*"))
    assert revisions == ["tokens-0", "tokens-4096", "tokens-8192"]
    for revision in revisions:
        meta = json.loads((pretrained / revision / "scaling_repro_meta.json").read_text())
        # 8 sequences x 32 tokens per step: the counts fall on step boundaries exactly.
        assert meta["pretrain_tokens"] == int(revision.split("-")[1]) == meta["step"] * 256
        assert meta["config_name"] == "tiny-xs" and meta["objective"] == "causal_lm"


def test_checkpoints_load_as_base_models_and_later_ones_are_better(pretrained):
    from scaling_repro.models.load import load_base_model

    losses = {}
    for tokens in (0, 8192):
        loaded = load_base_model(ModelConfig(name="tiny-xs", path=str(pretrained), revision=f"tokens-{tokens}"))
        assert loaded.pretrain_tokens == tokens
        losses[tokens] = _corpus_loss(loaded.model, loaded.tokenizer)
    assert losses[8192] < losses[0] - 0.5


def _corpus_loss(model, tokenizer) -> float:
    import torch

    from scaling_repro.data.collate import collate_for_lm, encode_text
    from scaling_repro.data.synthetic import pretraining_corpus
    from scaling_repro.models.nll import predicted_tokens, token_nll_sum

    docs = pretraining_corpus(40, seed=99)
    packed = pack_documents(
        [encode_text(tokenizer, d, add_bos=False) for d in docs], 32, tokenizer.bos_token_id, tokenizer.eos_token_id
    )
    batch = collate_for_lm(packed, tokenizer.pad_token_id)
    with torch.no_grad():
        return float(token_nll_sum(model.eval(), batch) / predicted_tokens(batch["labels"]))


def test_rerun_skips_a_finished_model(pretrained):
    final = pretrained / "tokens-8192" / "model.safetensors"
    before = final.stat().st_mtime_ns
    recipe = load_pretrain_recipe(RECIPE, [f"output_dir={pretrained.parent}", *SMALL])
    assert pretrain(recipe) == [pretrained]
    assert final.stat().st_mtime_ns == before


def test_packing_makes_full_length_sequences_with_every_token_a_label():
    packed = pack_documents([[5, 6, 7], [8, 9]], seq_len=4, bos=1, eos=2)
    assert [p.input_ids for p in packed] == [[1, 5, 6, 7], [2, 1, 8, 9]]
    assert all(p.labels == p.input_ids for p in packed)


@pytest.mark.parametrize(
    "override, field",
    [
        ("models=[gpt-9]", "models"),
        ("checkpoint_tokens=[3_000_000]", "checkpoint_tokens"),
        ("train.max_steps=10", "train"),
        ("corpus.colour=red", "corpus.colour"),
    ],
)
def test_bad_recipe_values_name_the_field(override, field):
    with pytest.raises(RecipeError, match=rf": {field}: "):
        load_pretrain_recipe(RECIPE, [override])


def test_pretraining_defaults_follow_the_pilot():
    recipe = PretrainRecipe(models=["tiny-s"], train={"eval_every": 7})
    assert (recipe.train.optimizer, recipe.train.schedule, recipe.train.threads) == ("adamw", "constant", 1)
    assert recipe.train.eval_every == 7
