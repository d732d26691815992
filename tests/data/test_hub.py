"""Hub tasks loaded from a tiny local copy (same code path as the hub), and offline errors."""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path

import pytest

from scaling_repro.config.recipe import TaskConfig
from scaling_repro.data.tasks import load_task
from scaling_repro.errors import UserError
from tests.helpers.paths import FIXTURES

_spec = importlib.util.spec_from_file_location("hub_copy", FIXTURES / "data" / "hub_copy.py")
hub_copy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hub_copy)


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory) -> Path:
    return hub_copy.write_hub_copy(tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("hf_cache"))


def _cfg(name, hub_dir, cache_dir, **fields) -> TaskConfig:
    return TaskConfig(name=name, data_dir=str(hub_dir), cache_dir=cache_dir, **fields)


def test_wmt14_reads_train_dev_and_the_three_test_years(hub_dir, cache_dir, caplog):
    with caplog.at_level(logging.WARNING):
        data = load_task(_cfg("wmt14_en_de", hub_dir, cache_dir))
    assert (data.info.source_lang, data.info.target_lang, data.info.metrics[0]) == ("en", "de", "bleurt")
    assert all(e.source.startswith("en ") and e.target == "de " + e.source[3:] for e in data.train)
    assert len(data.train) == 29  # 30 rows - 1 empty target; the duplicate pair is kept, as the paper counts
    assert "1 examples with an empty source or target and 0 duplicate pairs" in caplog.text
    assert [e.source for e in data.dev[:2]] == ["en 100", "en 101"]
    assert {name: len(ex) for name, ex in data.test.items()} == {
        "newstest2020": 8,
        "newstest2021": 8,
        "newstest2022": 8,
    }
    assert data.test["newstest2021"][0].target == "de wmt21 0"
    assert (data.info.max_source_tokens, data.info.max_target_tokens) == (256, 256)


def test_wmt14_drops_duplicate_pairs_with_the_dedupe_option(hub_dir, cache_dir, caplog):
    with caplog.at_level(logging.WARNING):
        data = load_task(_cfg("wmt14_en_de", hub_dir, cache_dir, params={"dedupe": True}))
    assert len(data.train) == 28 and len(set(data.train)) == 28  # 30 rows - 1 empty target - 1 duplicate
    assert "1 examples with an empty source or target and 1 duplicate pairs" in caplog.text


def test_wmt14_zero_shot_sets_are_flores_into_german(hub_dir, cache_dir):
    data = load_task(_cfg("wmt14_en_de", hub_dir, cache_dir, train_examples=5), zero_shot=True)
    assert list(data.zero_shot) == ["fr-de", "zh-de", "hi-de", "tr-de", "pl-de"]
    example = data.zero_shot["hi-de"][3]
    assert (example.source, example.target, example.lang) == ("hi flores devtest 3", "de flores devtest 3", "de")


def test_wmt19_uses_newsdev2017_and_test_sets_into_chinese(hub_dir, cache_dir):
    data = load_task(
        _cfg("wmt19_en_zh", hub_dir, cache_dir, train_examples=10, seed=4, params={"test_sets": ["newstest2022"]})
    )
    assert len(data.train) == 10 and all(e.target == "zh " + e.source[3:] for e in data.train)
    assert data.dev[0].source == "en wmt17/dev 0" and len(data.dev) == 10
    assert list(data.test) == ["newstest2022"] and data.test["newstest2022"][0].target == "zh wmt22 0"


@pytest.mark.slow
def test_mlsum_prefixes_articles_and_keeps_the_language_mix_at_every_n(hub_dir, cache_dir):
    sizes = {**hub_copy.MLSUM_SIZES, "en": hub_copy.CNN_SIZE}
    total = sum(sizes.values())
    names = {"de": "German", "es": "Spanish", "fr": "French", "en": "English"}
    full = load_task(_cfg("mlsum", hub_dir, cache_dir, seed=2))
    assert (full.info.max_source_tokens, full.info.max_target_tokens, full.info.metrics) == (512, 256, ("rougeL",))
    for example in full.train:
        assert example.source.startswith(
            f"Summarize the following document in {names[example.lang]}: {example.lang} article"
        )
        assert example.target.startswith(f"{example.lang} summary")
    for n in (7, 25, 64, 101):
        subset = load_task(_cfg("mlsum", hub_dir, cache_dir, train_examples=n, seed=2)).train
        for lang, size in sizes.items():
            assert abs(sum(e.lang == lang for e in subset) - n * size / total) < 1
    assert {e.lang for e in full.dev} == set(sizes) and len(full.test["test"]) == 4 * 3


def test_mlsum_dev_cap_keeps_the_language_mix(hub_dir, cache_dir):
    data = load_task(_cfg("mlsum", hub_dir, cache_dir, train_examples=4, dev_examples=8))
    assert sorted(e.lang for e in data.dev) == ["de", "de", "en", "en", "es", "es", "fr", "fr"]


def test_flores200_task_has_no_train_split_and_one_test_set_per_direction(hub_dir, cache_dir):
    data = load_task(_cfg("flores200", hub_dir, cache_dir, params={"target": "zh"}))
    assert data.train == [] and list(data.test) == ["fr-zh", "de-zh", "hi-zh", "tr-zh", "pl-zh"]
    assert len(data.dev) == 5 * 6 and data.test["de-zh"][0].source == "de flores devtest 0"
    with pytest.raises(UserError, match="no training data"):
        load_task(_cfg("flores200", hub_dir, cache_dir, train_examples=10))


def test_hub_task_offline_without_a_copy_names_task_source_and_remedy(tmp_path):
    with pytest.raises(UserError) as err:
        load_task(TaskConfig(name="wmt14_en_de", cache_dir=str(tmp_path)))
    message = str(err.value)
    for part in ("'wmt14_en_de'", "wmt/wmt14", "HF_DATASETS_OFFLINE", "hf download", "task.data_dir", "task.files"):
        assert part in message


def test_missing_files_in_the_local_copy_name_the_expected_path(tmp_path, cache_dir):
    expected = r"no local copy of mteb/mlsum \(config 'de'\) split 'train'.*mlsum/\*\*/de/\*\*/train"
    with pytest.raises(UserError, match=expected):
        load_task(TaskConfig(name="mlsum", data_dir=str(tmp_path), cache_dir=cache_dir))


def test_missing_sacrebleu_test_set_offline_says_how_to_get_it(hub_dir, tmp_path, cache_dir):
    partial = tmp_path / "copy"
    shutil.copytree(hub_dir, partial)
    shutil.rmtree(partial / "sacrebleu" / "wmt21")
    with pytest.raises(
        UserError, match=r"sacrebleu test set wmt21 en-de is not in task.data_dir.*sacrebleu -t wmt21 -l en-de"
    ):
        load_task(_cfg("wmt14_en_de", partial, cache_dir, train_examples=5))


def test_sacrebleu_set_offline_and_not_cached_is_a_user_error(tmp_path):
    from scaling_repro.data.hub import SacrebleuSet, load_sacrebleu_set

    with pytest.raises(UserError, match=r"wmt22 en-zh is not in .*sacrebleu \(offline: HF_DATASETS_OFFLINE=1\)"):
        load_sacrebleu_set(SacrebleuSet("wmt22", "en-zh"), "wmt19_en_zh", data_dir=None, cache_dir=str(tmp_path))


def test_mlsum_local_copy_may_nest_languages_and_split_folders(hub_dir, tmp_path, cache_dir):
    nested = tmp_path / "copy"
    for source in (hub_dir / "mlsum").glob("*/*"):  # mlsum/de/train-0.parquet -> mlsum/data/de/train/0000.parquet
        split = source.name.split("-")[0].split(".")[0]
        target = nested / "mlsum" / "data" / source.parent.name / split / f"0000{source.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    shutil.copytree(hub_dir / "cnn_dailymail", nested / "cnn_dailymail" / "data")
    flat = load_task(_cfg("mlsum", hub_dir, cache_dir, train_examples=12))
    assert load_task(_cfg("mlsum", nested, cache_dir, train_examples=12)).train[:] == flat.train[:]
