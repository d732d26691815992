"""A table as both a tidy CSV (one value per row) and a readable Markdown rendering."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scaling_repro.fileio import atomic_write_text


def tidy_frame(rows: list[dict]) -> pd.DataFrame:
    """Return rows as a DataFrame with NaN (not None) for missing values, as a CSV reads back."""
    return pd.DataFrame(rows).replace({None: np.nan})


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a GitHub-flavoured Markdown table (cells are escaped for '|')."""

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def with_paper(ours: str, published: str | None) -> str:
    """Return 'ours (published)' when a published value is given, else 'ours'."""
    return ours if published is None else f"{ours} ({published})"


@dataclass
class Table:
    """One paper table computed from results: tidy data, Markdown, and what is missing."""

    number: int
    title: str
    frame: pd.DataFrame  # tidy: the CSV
    sections: list[tuple[str, str]] = field(default_factory=list)  # (heading, Markdown table)
    caption: str = ""  # units and how to read the table
    notes: list[str] = field(default_factory=list)  # what could not be computed and why

    def __post_init__(self) -> None:
        self.notes = list(dict.fromkeys(self.notes))  # one reason can block several cells

    @property
    def stem(self) -> str:
        """File name stem, e.g. 'table04'."""
        return f"table{self.number:02d}"

    @property
    def empty(self) -> bool:
        """True when no value could be computed."""
        return self.frame.empty

    def to_markdown(self, level: int = 2) -> str:
        """Return the table as Markdown: title, caption, one table per section, missing notes."""
        parts = [f"{'#' * level} Table {self.number}: {self.title}", self.caption]
        for heading, body in self.sections:
            parts += [f"{'#' * (level + 1)} {heading}" if heading else "", body]
        if self.notes:
            parts.append("Not computed:\n" + "\n".join(f"- {n}" for n in self.notes))
        return "\n\n".join(p for p in parts if p) + "\n"

    def to_csv(self) -> str:
        """Return the tidy data as CSV text."""
        return self.frame.to_csv(index=False)

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write ``<stem>.md`` and ``<stem>.csv`` into ``out_dir`` atomically; return the paths."""
        out = Path(out_dir)
        paths = [out / f"{self.stem}.md", out / f"{self.stem}.csv"]
        atomic_write_text(paths[0], self.to_markdown())
        atomic_write_text(paths[1], self.to_csv())
        return paths
