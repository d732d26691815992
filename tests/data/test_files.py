"""Reading local jsonl/tsv/csv files: formats, and every kind of bad input."""

from __future__ import annotations

import json
import logging

import pytest

from scaling_repro.data.files import read_pairs
from scaling_repro.data.types import Example
from scaling_repro.errors import UserError


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_tsv_and_csv_give_the_same_examples(tmp_path):
    rows = [{"en": 'a cat, "quoted"', "de": "eine Katze"}, {"en": "ünïcode", "de": "Übung"}]
    _jsonl(tmp_path / "a.jsonl", rows)
    (tmp_path / "a.tsv").write_text('en\tde\na cat, "quoted"\teine Katze\nünïcode\tÜbung\n', encoding="utf-8")
    (tmp_path / "a.csv").write_text('en,de\n"a cat, ""quoted""",eine Katze\nünïcode,Übung\n', encoding="utf-8")
    expected = [Example('a cat, "quoted"', "eine Katze"), Example("ünïcode", "Übung")]
    for name in ("a.jsonl", "a.tsv", "a.csv"):
        assert read_pairs(tmp_path / name, "en", "de") == expected


def test_format_can_be_forced_and_unknown_suffix_is_an_error(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("source\ttarget\nhello\thallo\n", encoding="utf-8")
    with pytest.raises(UserError, match="task.files.format"):
        read_pairs(path)
    assert read_pairs(path, fmt="tsv") == [Example("hello", "hallo")]


def test_whitespace_is_stripped_and_bom_accepted(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_bytes("\ufeffsource\ttarget\n  hello \thallo\n\n".encode("utf-8"))
    assert read_pairs(path) == [Example("hello", "hallo")]


@pytest.mark.parametrize("content", [b"", b"   \n\n"])
def test_empty_file_is_an_error(tmp_path, content):
    path = tmp_path / "train.jsonl"
    path.write_bytes(content)
    with pytest.raises(UserError, match="train.jsonl is empty"):
        read_pairs(path)


def test_header_without_rows_is_an_error(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("source,target\n", encoding="utf-8")
    with pytest.raises(UserError, match="no examples"):
        read_pairs(path)


@pytest.mark.parametrize(
    "name, content",
    [
        ("a.jsonl", '{"source": "x", "translation": "y"}\n'),
        ("a.tsv", "source\ttranslation\nx\ty\n"),
    ],
)
def test_missing_column_names_the_column_the_file_and_the_recipe_field(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=r"no target column 'target'.*'translation'.*task.files.target_column"):
        read_pairs(path)


def test_non_utf8_bytes_are_an_error_naming_the_line(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_bytes(b"source\ttarget\nok\tgut\n" + "café\tKaffee\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"not UTF-8: byte 0xe9 at line 3"):
        read_pairs(path)


def test_empty_targets_are_dropped_with_a_logged_count(tmp_path, caplog):
    path = _jsonl(
        tmp_path / "a.jsonl",
        [
            {"source": "a", "target": "b"},
            {"source": "c", "target": "  "},
            {"source": "d", "target": None},
            {"source": "", "target": "e"},
            {"source": "f", "target": "g"},
        ],
    )
    with caplog.at_level(logging.WARNING):
        examples = read_pairs(path)
    assert examples == [Example("a", "b"), Example("f", "g")]
    assert "dropped 3 of 5 examples with an empty source or target (line 2, line 3, line 4)" in caplog.text


def test_file_with_only_empty_targets_is_an_error(tmp_path):
    path = _jsonl(tmp_path / "a.jsonl", [{"source": "a", "target": ""}])
    with pytest.raises(UserError, match="none of its 1 examples"):
        read_pairs(path)


def test_duplicates_are_kept_by_the_reader(tmp_path):
    """Duplicates are a training-set matter: the sampler drops them (test_data_sampling)."""
    path = _jsonl(tmp_path / "a.jsonl", [{"source": "a", "target": "b"}] * 2)
    assert len(read_pairs(path)) == 2


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("a.jsonl", '{"source": "a", "target": "b"}\n{"source": "a", \n', "line 2 is not valid JSON"),
        ("a.jsonl", '["a", "b"]\n', "expected a JSON object"),
        ("a.jsonl", '{"source": "a", "target": 3}\n', "line 1: column 'target' holds int"),
        ("a.tsv", "source\ttarget\na\tb\tc\n", "line 2 has 3 fields, the header has 2"),
    ],
)
def test_malformed_rows_are_errors_naming_the_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        read_pairs(path)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_pairs(tmp_path / "nope.jsonl")
