"""The record of what made a study's tokenizer and base models, checked when a study continues."""

import json
import logging

import pytest

from scaling_repro.errors import UserError
from scaling_repro.reproduce.provenance import (
    RECORD_FILE,
    check_settings,
    differences,
    record_settings,
)

SETTINGS = {"corpus": {"parallel_share": 0.5, "params": {"roots": 320}}, "lr": 0.003}


def test_differences_name_each_changed_nested_setting_with_both_values():
    changed = {"corpus": {"parallel_share": 0.3, "params": {"roots": 320}}, "lr": 0.003, "seq_len": 64}
    assert differences(SETTINGS, changed) == ["corpus.parallel_share: 0.5 -> 0.3", 'seq_len: "(unset)" -> 64']


def test_the_same_settings_pass_the_check(tmp_path):
    record_settings(tmp_path, SETTINGS)
    check_settings(tmp_path, json.loads(json.dumps(SETTINGS)), "base model tiny-s")


def test_changed_settings_are_an_error_naming_the_setting_and_what_to_do(tmp_path):
    record_settings(tmp_path, SETTINGS)
    with pytest.raises(UserError, match=r"base model tiny-s .*lr: 0.003 -> 0.001.*new --out"):
        check_settings(tmp_path, {**SETTINGS, "lr": 0.001}, "base model tiny-s")


def test_a_directory_without_a_record_passes_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        check_settings(tmp_path, SETTINGS, "the tokenizer")
    assert RECORD_FILE in caplog.text


def test_a_damaged_record_is_an_error_not_a_pass(tmp_path):
    (tmp_path / RECORD_FILE).write_text("{trunc")
    with pytest.raises(UserError, match="damaged"):
        check_settings(tmp_path, SETTINGS, "the tokenizer")
