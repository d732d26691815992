"""Offline stand-ins of a plan's hub data and models: a synthetic corpus in the WMT14 En-De
layout loads as the real task, and a tiny random GPT-NeoX directory loads as Pythia."""

import pytest

from scaling_repro.config.recipe import ModelConfig, TaskConfig
from scaling_repro.config.study_plan import StandIn
from scaling_repro.data.tasks import load_task
from scaling_repro.models.load import load_base_model
from scaling_repro.reproduce.stand_ins import write_stand_in_corpus, write_stand_in_model


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "wmt14"
    assert write_stand_in_corpus(root)
    return root


def test_the_stand_in_corpus_loads_as_wmt14_en_de_with_its_test_and_zero_shot_sets(corpus):
    task = load_task(TaskConfig(name="wmt14_en_de", data_dir=str(corpus), train_examples=50), zero_shot=True)
    assert len(task.train) == 50 and len(task.dev) == 40
    assert set(task.test) == {"newstest2020", "newstest2021", "newstest2022"}
    assert set(task.zero_shot) == {"fr-de", "zh-de", "hi-de", "tr-de", "pl-de"}


def test_a_complete_stand_in_corpus_is_not_written_again(corpus):
    assert not write_stand_in_corpus(corpus)


def test_a_stand_in_model_loads_each_revision_with_pythia_s_token_rule(tmp_path):
    root = tmp_path / "pythia-70m"
    assert write_stand_in_model(root, ["step1000", "step143000"], StandIn(hidden_size=16))
    early = load_base_model(ModelConfig(name=str(root), revision="step1000"))
    final = load_base_model(ModelConfig(name=str(root), revision="step143000"))
    assert early.pretrain_tokens == 1000 * 2_097_152 and final.pretrain_tokens == 143_000 * 2_097_152
    first = next(early.model.parameters())
    assert not (first == next(final.model.parameters())).all()  # one random initialisation per revision
    assert not write_stand_in_model(root, ["step1000", "step143000"], StandIn(hidden_size=16))
