"""Synthetic examples with the length spread of the paper's tasks under a 256K SentencePiece
vocabulary (no dataset is read: the check must run anywhere in minutes).

- WMT-like (news sentence pairs): source tokens log-normal with median 27 and sigma 0.55,
  target = source x log-normal(median 1.1, sigma 0.15); with BOS and EOS a pair is ~60 tokens
  (median), the longest of a micro-batch of 16 ~130-150, cut at the task caps 256 / 256.
- MLSum-like (news articles and their summaries): article tokens log-normal with median 700
  and sigma 0.5, so about three in four are cut at the 512-token source cap; summary tokens
  log-normal with median 30 and sigma 0.45, cap 256; a pair is ~540 tokens (median).

Token ids are drawn from a Zipf-like law over a few thousand ids, so that a few training
steps move the loss well away from a fresh model's (the reload checks need that contrast).
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass

from scaling_repro.data.collate import IGNORE_INDEX, EncodedExample

FIRST_WORD_ID = 4  # ids 0-3: pad, bos, eos, unk
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2


@dataclass(frozen=True)
class LengthLaw:
    """Log-normal source and target lengths (in tokens, without BOS/EOS) and the task's caps."""

    name: str
    source_median: float
    source_sigma: float
    target_ratio_median: float | None  # target = source x ratio (translation); None: own law
    target_median: float
    target_sigma: float
    max_source_tokens: int  # including BOS, as the task's cap counts it
    max_target_tokens: int  # including EOS

    def sample(self, rng: random.Random) -> tuple[int, int]:
        """Return (source tokens, target tokens) of one example, cut to the caps."""
        source = max(1, round(rng.lognormvariate(math.log(self.source_median), self.source_sigma)))
        if self.target_ratio_median is not None:
            ratio = rng.lognormvariate(math.log(self.target_ratio_median), self.target_sigma)
            target = max(1, round(source * ratio))
        else:
            target = max(1, round(rng.lognormvariate(math.log(self.target_median), self.target_sigma)))
        return min(source, self.max_source_tokens - 1), min(target, self.max_target_tokens - 1)

    def scaled(self, factor: float) -> LengthLaw:
        """Return the law with medians and caps multiplied by ``factor`` (tiny CPU runs)."""
        if factor == 1:
            return self
        return dataclasses.replace(
            self,
            source_median=self.source_median * factor,
            target_median=self.target_median * factor,
            max_source_tokens=max(4, round(self.max_source_tokens * factor)),
            max_target_tokens=max(4, round(self.max_target_tokens * factor)),
        )


WMT = LengthLaw("WMT-like", 27, 0.55, 1.1, 0.0, 0.15, 256, 256)
MLSUM = LengthLaw("MLSum-like", 700, 0.5, None, 30, 0.45, 512, 256)
LAWS = {"wmt": WMT, "mlsum": MLSUM}


def _word_ids(rng: random.Random, count: int, vocab: int, active: int) -> list[int]:
    """``count`` ids in [FIRST_WORD_ID, vocab), Zipf-like over the first ``active`` of them."""
    top = max(1, min(active, vocab - FIRST_WORD_ID))
    return [FIRST_WORD_ID + min(top - 1, int(top ** rng.random()) - 1) for _ in range(count)]


def encoded_examples(law: LengthLaw, n: int, vocab: int, seed: int = 0, active: int = 4096) -> list[EncodedExample]:
    """Return ``n`` examples ``bos + source + target + eos``, the loss on target and EOS."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        source, target = law.sample(rng)
        prompt = [BOS_ID, *_word_ids(rng, source, vocab, active)]
        answer = [*_word_ids(rng, target, vocab, active), EOS_ID]
        out.append(EncodedExample(prompt + answer, [IGNORE_INDEX] * len(prompt) + answer, len(prompt)))
    return out


def text_pairs(law: LengthLaw, n: int, vocab: int, seed: int = 0, active: int = 4096) -> list[tuple[str, str]]:
    """Return ``n`` (source, target) texts of the words ``w<id>``, which the word-level
    tokenizer of :mod:`scaling_repro.gpu_checks.fixtures` encodes to one token each."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        source, target = law.sample(rng)
        words = [" ".join(f"w{i}" for i in _word_ids(rng, k, vocab, active)) for k in (source, target)]
        pairs.append((words[0], words[1]))
    return pairs


def length_summary(examples: list[EncodedExample]) -> str:
    """Return "median M, p90 P, max X tokens" of the examples' lengths."""
    lengths = sorted(len(e.input_ids) for e in examples)
    pick = lambda q: lengths[min(len(lengths) - 1, int(q * len(lengths)))]  # noqa: E731
    return f"median {pick(0.5)}, p90 {pick(0.9)}, max {lengths[-1]} tokens"
