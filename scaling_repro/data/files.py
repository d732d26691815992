"""Reading (source, target) pairs from jsonl / tsv / csv files, and the cleaning every split gets.

Bad input is handled as follows (the same for ``local`` files and hub data):
- empty file (no bytes, only whitespace, or a header without rows), missing column, a row with
  the wrong number of fields, bad JSON, a non-text value, non-UTF-8 bytes: ``UserError`` naming
  the file, the line and the fix;
- a UTF-8 byte-order mark is accepted; leading/trailing whitespace of source and target is
  stripped (a trailing newline in a target would otherwise be learned and generated);
- an empty source or target (after stripping, or a JSON null) drops the example; the count and
  the first line numbers are logged as a warning;
- duplicate (source, target) pairs are dropped from training sets only (first kept, count
  logged, see :mod:`scaling_repro.data.sampling`); evaluation sets keep them, as repeated
  sentences are part of a test set's distribution.
If nothing is left after dropping, that is a ``UserError``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from scaling_repro.data.types import Example
from scaling_repro.errors import UserError

log = logging.getLogger(__name__)

FileFormat = Literal["jsonl", "tsv", "csv"]
_SUFFIX_FORMATS: dict[str, FileFormat] = {".jsonl": "jsonl", ".json": "jsonl", ".tsv": "tsv", ".csv": "csv"}


def detect_format(path: Path, fmt: str = "auto") -> FileFormat:
    """Return ``fmt``, or the format implied by the file suffix when ``fmt`` is 'auto'."""
    if fmt != "auto":
        if fmt not in ("jsonl", "tsv", "csv"):
            raise UserError(f"task.files.format {fmt!r} is not known; allowed: auto, jsonl, tsv, csv")
        return fmt  # type: ignore[return-value]
    try:
        return _SUFFIX_FORMATS[path.suffix.lower()]
    except KeyError:
        raise UserError(
            f"cannot tell the format of {path} from its suffix {path.suffix!r}; name it .jsonl/.tsv/.csv "
            "or set task.files.format to jsonl, tsv or csv"
        ) from None


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"data file {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"data file {path} is a directory, not a file") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise UserError(
            f"{path} is not UTF-8: byte 0x{data[err.start]:02x} at line {line} (offset {err.start}) "
            "cannot be decoded; convert the file, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


def _missing_column(
    path: Path, column: str, which: str, available: Iterable[str], line: int | None = None
) -> UserError:
    where = f" (line {line})" if line is not None else ""
    return UserError(
        f"{path}{where} has no {which} column {column!r}; columns: {', '.join(map(repr, available)) or 'none'}. "
        f"Set task.files.{which}_column to one of them"
    )


def _cell(path: Path, line: int, column: str, value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UserError(f"{path} line {line}: column {column!r} holds {type(value).__name__} {value!r}, not text")
    return value


def _rows_jsonl(path: Path, text: str, source_column: str, target_column: str) -> list[tuple[int, str, str]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path} line {number} is not valid JSON: {err.msg}") from None
        if not isinstance(record, dict):
            raise UserError(f"{path} line {number}: expected a JSON object per line, got {type(record).__name__}")
        for column, which in ((source_column, "source"), (target_column, "target")):
            if column not in record:
                raise _missing_column(path, column, which, record, number)
        rows.append(
            (
                number,
                _cell(path, number, source_column, record[source_column]),
                _cell(path, number, target_column, record[target_column]),
            )
        )
    return rows


def _rows_delimited(
    path: Path, text: str, fmt: FileFormat, source_column: str, target_column: str
) -> list[tuple[int, str, str]]:
    # TSV files carry quotes verbatim (no CSV quoting), the common convention of parallel corpora.
    if fmt == "tsv":
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as err:  # e.g. a header field over csv.field_size_limit()
        raise UserError(f"{path} line {reader.line_num} (the header): {err}") from None
    for column, which in ((source_column, "source"), (target_column, "target")):
        if column not in header:
            raise _missing_column(path, column, which, header, 1)
    src_at, tgt_at = header.index(source_column), header.index(target_column)
    rows = []
    try:
        for fields in reader:
            number = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise UserError(
                    f"{path} line {number} has {len(fields)} fields, the header has {len(header)}"
                    + (" (a tab inside a text?)" if fmt == "tsv" else "")
                )
            rows.append((number, fields[src_at], fields[tgt_at]))
    except csv.Error as err:
        raise UserError(f"{path} line {reader.line_num}: {err}") from None
    return rows


def read_pairs(
    path: str | Path, source_column: str = "source", target_column: str = "target", fmt: str = "auto"
) -> list[Example]:
    """Return the cleaned examples of one jsonl/tsv/csv file (see the module docstring for what
    is an error and what is dropped with a logged count)."""
    path = Path(path).expanduser()
    kind = detect_format(path, fmt)
    text = _read_text(path)
    if not text.strip():
        raise UserError(f"data file {path} is empty")
    if kind == "jsonl":
        rows = _rows_jsonl(path, text, source_column, target_column)
    else:
        rows = _rows_delimited(path, text, kind, source_column, target_column)
    if not rows:
        raise UserError(f"data file {path} has a header but no examples")
    return clean_examples(((Example(src, tgt), f"line {number}") for number, src, tgt in rows), where=str(path))


def clean_examples(items: Iterable[tuple[Example, str]], where: str) -> list[Example]:
    """Return the examples with whitespace stripped, dropping those with an empty source or
    target (count and first positions logged); ``items`` pairs each example with its position
    (e.g. 'line 7') for the log. Raise ``UserError`` when nothing is left."""
    kept: list[Example] = []
    dropped: list[str] = []
    total = 0
    for example, position in items:
        total += 1
        source, target = example.source.strip(), example.target.strip()
        if not source or not target:
            dropped.append(position)
            continue
        kept.append(Example(source, target, example.lang))
    if dropped:
        log.warning(
            "%s: dropped %d of %d examples with an empty source or target (%s%s)",
            where,
            len(dropped),
            total,
            ", ".join(dropped[:5]),
            ", ..." if len(dropped) > 5 else "",
        )
    if not kept:
        raise UserError(f"{where}: none of its {total} examples has both a source and a target")
    return kept
