"""A finding's record and how per-item states become its verdict."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Verdict = Literal["reproduced", "not reproduced", "inconclusive", "not testable"]
VERDICTS: tuple[Verdict, ...] = ("reproduced", "not reproduced", "inconclusive", "not testable")


class Finding(BaseModel):
    """One of the paper's findings and what this study says about it."""

    model_config = ConfigDict(extra="forbid")

    number: int
    claim: str  # the paper's finding (PAPER.md, "Findings to reproduce")
    criterion: str  # what is checked, in numbers
    verdict: Verdict
    evidence: list[str]  # the numbers behind the verdict, one line each


def combine(states: list[str]) -> Verdict:
    """Return the verdict of per-item states: 'agree' everywhere -> reproduced, any 'contra' ->
    not reproduced, only 'missing' (or nothing) -> not testable, else inconclusive. Items
    'missing' are left out when others were judged."""
    judged = [s for s in states if s != "missing"]
    if not judged:
        return "not testable"
    if all(s == "agree" for s in judged):
        return "reproduced"
    if "contra" in judged:
        return "not reproduced"
    return "inconclusive"


def judge(order: str, wanted: str) -> str:
    """Return 'agree' when a paired comparison came out ``wanted``, 'contra' when it came out the
    other way, 'unclear' when it was undecided."""
    if order == "undecided":
        return "unclear"
    return "agree" if order == wanted else "contra"
