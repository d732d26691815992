"""One reading of the offline flags (scaling_repro/offline.py) for the data, tokenizer and model stages."""

from __future__ import annotations

import pytest

from scaling_repro.data import hub
from scaling_repro.offline import datasets_offline, env_flag, hub_offline

FLAGS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture(autouse=True)
def _no_flags(monkeypatch):
    for name in FLAGS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("value", ["1", "true", "True", "yes", "ON", " on "])
def test_a_flag_is_on_for_1_true_yes_on_in_any_case(monkeypatch, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert env_flag("HF_HUB_OFFLINE")


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "offline"])
def test_a_flag_is_off_for_anything_else(monkeypatch, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert not env_flag("HF_HUB_OFFLINE")


def test_transformers_offline_stops_models_but_not_datasets(monkeypatch):
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "yes")
    assert hub_offline() and not datasets_offline() and not hub.offline()


def test_hub_offline_stops_both_and_datasets_offline_only_datasets(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "true")
    assert hub_offline() and datasets_offline() and hub.offline()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "on")
    assert datasets_offline() and not hub_offline()
