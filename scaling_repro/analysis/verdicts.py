"""A finding's record and how per-item states become its verdict."""

from __future__ import annotations

from collections.abc import Sequence
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
    parts: dict[str, Verdict] = {}  # sub-verdicts judged on their own, e.g. finding 6's "moves up"

    @property
    def reason(self) -> str:
        """Return one sentence of why the verdict is what it is: the evidence line that decided it."""
        return reason(self.verdict, self.evidence)

    def summary(self) -> dict:
        """Return the finding as ``findings --json`` writes it: finding, verdict, parts, reason, criterion, numbers."""
        return {
            "finding": self.number,
            "claim": self.claim,
            "verdict": self.verdict,
            "parts": dict(self.parts),
            "reason": self.reason,
            "criterion": self.criterion,
            "numbers": list(self.evidence),
        }


DECIDING = {
    "not reproduced": ("-> contra", "-> no switch", "-> moves down"),
    "inconclusive": ("-> unclear", "not counted", "-> undecided", "no bootstrap", "no replicates"),
}


def reason(verdict: Verdict, evidence: Sequence[str]) -> str:
    """Return the evidence line behind ``verdict`` (the first contradiction or undecided item), or a
    count of the agreeing items for 'reproduced'."""
    if verdict == "reproduced":
        agreeing = [line for line in evidence if line.rstrip().endswith(("-> agree", "-> switch"))]
        return f"all {len(agreeing)} comparison(s) on the paper's side" if agreeing else "the criterion holds"
    for line in evidence:
        if any(mark in line for mark in DECIDING.get(verdict, ())):
            return line
    return evidence[0] if evidence else verdict


def combine(states: Sequence[str]) -> Verdict:
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
