"""``scaling-repro data show`` prints any text of a data file safely: under an ASCII locale
without a UnicodeEncodeError, and with bidirectional overrides and other control characters
escaped, so a line cannot be shown reordered or rewrite the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from scaling_repro.cli import main
from tests.helpers.paths import REPO, pythonpath

ROWS = [
    {"source": "pay \u202eanilam\u202c now \u00e9t\u00e9", "target": "bell\x07 \x1b[2J \u4e2d\u6587"},
    {"source": "plain", "target": "text"},
]


def _files(tmp_path):
    for split in ("train", "dev"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    return [f"files.train={tmp_path / 'train.jsonl'}", f"files.dev={tmp_path / 'dev.jsonl'}"]


def test_show_under_an_ascii_locale_prints_escapes_not_a_traceback(tmp_path):
    env = {**os.environ, "LC_ALL": "C", "PYTHONIOENCODING": "ascii", "PYTHONPATH": pythonpath()}
    done = subprocess.run(
        [sys.executable, "-m", "scaling_repro", "data", "show", "local", *_files(tmp_path), "--split", "dev"],
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    out = done.stdout.decode("ascii")  # nothing but ASCII reached the terminal
    assert "source: pay \\u202eanilam\\u202c now \\xe9t\\xe9" in out
    assert "target: bell\\x07 \\x1b[2J \\u4e2d\\u6587" in out


def test_show_escapes_bidi_overrides_and_control_characters(tmp_path, capsys):
    assert main(["data", "show", "local", *_files(tmp_path), "--split", "dev", "--n", "1"]) == 0
    out = capsys.readouterr().out
    assert not any(char in out for char in "\u202e\u202c\x07\x1b")
    assert "[1] source: pay \\u202eanilam\\u202c now \u00e9t\u00e9" in out
    assert "target: bell\\x07 \\x1b[2J \u4e2d\u6587" in out
