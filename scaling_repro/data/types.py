"""The records the data stage hands to the model, training and evaluation stages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    """One conditional-generation pair; ``lang`` is the target language code when it varies
    within a task (MLSum's languages, Flores directions), else None."""

    source: str
    target: str
    lang: str | None = None


def add_to_digest(digest: Any, example: Example) -> None:
    """Feed ``example``'s source and target (each length-prefixed) to a hashlib ``digest``: the
    one definition of an examples digest (token cache keys, stored subsets)."""
    for text in (example.source, example.target):
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)


@dataclass(frozen=True)
class TaskInfo:
    """What the later stages need to know about a task besides its examples.

    ``template`` turns a source into the model input, e.g. ``"{source}\\n"`` or
    ``"Summarize the following document in German: {source}\\n"``; the target follows it
    directly and is followed by EOS. ``metrics`` are the generation metrics the paper uses
    for the task (first = primary: BLEURT for translation, RougeL for summarization).
    """

    name: str
    source_lang: str
    target_lang: str
    metrics: tuple[str, ...]
    template: str = "{source}\n"
    max_source_tokens: int = 256
    max_target_tokens: int = 256


@dataclass(frozen=True)
class TaskData:
    """A task's splits after loading (and subset sampling of ``train``). ``train`` is a list, or
    for a pool on disk a read-only sequence that reads its examples on demand
    (:class:`scaling_repro.data.subsets.SubsetView`)."""

    info: TaskInfo
    train: Sequence[Example]
    dev: list[Example]
    test: dict[str, list[Example]] = field(default_factory=dict)
    zero_shot: dict[str, list[Example]] = field(default_factory=dict)
