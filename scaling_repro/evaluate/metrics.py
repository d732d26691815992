"""Generation metrics: BLEURT, RougeL, BLEU and chrF, all reported on a 0-100 scale.

- ``rougeL``: mean over examples of rouge-score's RougeL F1 (x100), with a tokenizer that
  keeps letters of every script (rouge-score's default deletes everything outside [a-z0-9],
  which mangles German/French/Spanish words and empties Chinese text). Words are maximal runs
  of letters, marks and digits, lower-cased after NFKC normalisation; each CJK character is a
  token of its own, the usual practice for Chinese ROUGE. On ASCII text it tokenizes exactly
  like rouge-score's default (no stemming).
- ``bleu``: sacreBLEU corpus BLEU; each segment is tokenized with ``zh`` when its target
  language is Chinese and ``13a`` otherwise, so a mixed corpus is scored per language.
- ``chrf``: sacreBLEU corpus chrF (character 6-grams, beta 2).
- ``bleurt``: mean BLEURT-20 score (x100) from :mod:`scaling_repro.evaluate.bleurt`.

Nothing here touches the network.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

BleurtFn = Callable[[Sequence[str], Sequence[str]], list[float]]
"""(references, candidates) -> one BLEURT score per pair, e.g. ``BleurtScorer.score``."""

METRIC_NAMES = ("bleurt", "rougeL", "bleu", "chrf")
ALL = "all"
"""Key of the score over the concatenation of all test sets."""

_CJK_RANGES = (
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x3134F),  # CJK Extensions B-G
)


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def multilingual_tokenize(text: str) -> list[str]:
    """Return the RougeL tokens of ``text``: lower-cased words of letters, marks and digits in
    any script, and each CJK character alone."""
    tokens: list[str] = []
    word: list[str] = []
    for char in unicodedata.normalize("NFKC", text).lower():
        if _is_cjk(char):
            if word:
                tokens.append("".join(word))
                word = []
            tokens.append(char)
        elif unicodedata.category(char)[0] in "LMN":
            word.append(char)
        elif word:
            tokens.append("".join(word))
            word = []
    if word:
        tokens.append("".join(word))
    return tokens


class MultilingualTokenizer:
    """rouge-score tokenizer interface around :func:`multilingual_tokenize`."""

    def tokenize(self, text: str) -> list[str]:
        return multilingual_tokenize(text)


def rouge_l_scores(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """Return the RougeL F1 (x100) of each prediction against its reference."""
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rougeL"], tokenizer=MultilingualTokenizer())
    return [100 * scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]


def is_chinese(lang: str | None) -> bool:
    """True for Chinese language codes: 'zh', 'zh-CN', 'zho_Hans', 'cmn', ..."""
    if not lang:
        return False
    return lang.replace("-", "_").split("_")[0].lower() in ("zh", "zho", "chi", "cmn")


def bleu_tokenizer_name(lang: str | None) -> str:
    """Return sacreBLEU's tokenizer for a target language: ``zh`` for Chinese, else ``13a``."""
    return "zh" if is_chinese(lang) else "13a"


def corpus_bleu(predictions: Sequence[str], references: Sequence[str], langs: Sequence[str | None]) -> float:
    """Return sacreBLEU corpus BLEU with each segment tokenized for its own target language."""
    from sacrebleu.metrics.bleu import BLEU

    tokenizers = {name: BLEU(tokenize=name).tokenizer for name in {bleu_tokenizer_name(lang) for lang in langs}}
    hyps, refs = [], []
    for pred, ref, lang in zip(predictions, references, langs):
        tokenize = tokenizers[bleu_tokenizer_name(lang)]
        hyps.append(tokenize(pred.rstrip()))
        refs.append(tokenize(ref.rstrip()))
    return float(BLEU(tokenize="none").corpus_score(hyps, [refs]).score)


def corpus_chrf(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Return sacreBLEU corpus chrF."""
    from sacrebleu.metrics.chrf import CHRF

    return float(CHRF().corpus_score(list(predictions), [list(references)]).score)


@dataclass(frozen=True)
class Generations:
    """One test set's model outputs beside their references and target languages."""

    predictions: list[str]
    references: list[str]
    langs: list[str | None]

    def __post_init__(self) -> None:
        if not len(self.predictions) == len(self.references) == len(self.langs):
            raise ValueError("predictions, references and langs must have equal lengths")

    @staticmethod
    def concat(parts: Sequence[Generations]) -> Generations:
        """Return all parts as one set, in order."""
        return Generations(
            [p for g in parts for p in g.predictions],
            [r for g in parts for r in g.references],
            [lang for g in parts for lang in g.langs],
        )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def score_sets(
    metrics: Sequence[str], sets: Mapping[str, Generations], bleurt: BleurtFn | None = None
) -> dict[str, dict[str, float]]:
    """Return metric -> test set (and ``'all'``, the concatenation) -> score.

    ``bleurt`` scores (references, candidates) pairs; it is required when ``'bleurt'`` is
    among ``metrics``. Sentence-level metrics (BLEURT, RougeL) are computed once
    per example and averaged; corpus metrics (BLEU, chrF) are computed per set and on the
    concatenation. Empty sets are left out.
    """
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; allowed: {', '.join(METRIC_NAMES)}")
    sets = {name: gens for name, gens in sets.items() if gens.predictions}
    if not sets:
        return {}
    everything = Generations.concat(list(sets.values()))
    spans, start = {}, 0
    for name, gens in sets.items():
        spans[name] = (start, start + len(gens.predictions))
        start += len(gens.predictions)
    scores: dict[str, dict[str, float]] = {}
    for metric in metrics:
        if metric in ("bleurt", "rougeL"):
            if metric == "bleurt":
                if bleurt is None:
                    raise ValueError("the bleurt metric needs a BLEURT scorer")
                per_example = [100 * s for s in bleurt(everything.references, everything.predictions)]
            else:
                per_example = rouge_l_scores(everything.predictions, everything.references)
            by_set = {name: _mean(per_example[a:b]) for name, (a, b) in spans.items()}
            by_set[ALL] = _mean(per_example)
        elif metric == "bleu":
            by_set = {name: corpus_bleu(g.predictions, g.references, g.langs) for name, g in sets.items()}
            by_set[ALL] = corpus_bleu(everything.predictions, everything.references, everything.langs)
        else:
            by_set = {name: corpus_chrf(g.predictions, g.references) for name, g in sets.items()}
            by_set[ALL] = corpus_chrf(everything.predictions, everything.references)
        scores[metric] = by_set
    return scores
