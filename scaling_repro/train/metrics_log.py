"""The run's JSONL training log: one line per logging interval (``event: train``) and per dev
evaluation (``event: eval``). A resumed run first drops the lines written after the
checkpoint it resumes from, so the log of an interrupted run equals an uninterrupted one's.

The log is never written through a symbolic link, FIFO or other non-file planted at its path
in a shared results tree: the run stops with a one-line error naming it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from scaling_repro.errors import UserError
from scaling_repro.fileio import NotAPlainFile, atomic_write_text, open_append_text

LOG_FILE = "train_log.jsonl"


class JsonlLog:
    """Appends JSON lines to ``run_dir/train_log.jsonl`` (main process only)."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.path = Path(run_dir) / LOG_FILE
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        """Drop lines with ``step`` greater than ``step`` (and any torn or garbled line)."""
        if not self.enabled:
            return
        if self.path.is_symlink():
            raise UserError(
                f"training log {self.path} is a symbolic link; refusing to write through it (remove the link)"
            )
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = open_append_text(self.path)
        except NotAPlainFile as err:
            raise UserError(f"training log {err}") from None
        with handle:
            handle.write(json.dumps(clean, sort_keys=True) + "\n")


def read_log(run_dir: Path, event: str | None = None) -> list[dict[str, Any]]:
    """Return the records of a run's log, optionally only those of one ``event``."""
    path = Path(run_dir) / LOG_FILE
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if event is None or r.get("event") == event]
