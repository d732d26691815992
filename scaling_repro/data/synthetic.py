"""``synthetic_mt``: the offline translation task, and the pretraining corpus of the tiny models.

Why a synthetic task (and not, e.g., gettext catalogs found on the machine): the tiny CPU study
needs a task that exists on every machine, is identical everywhere, and shows the paper's
behaviour, i.e. more finetuning data gives lower test loss with diminishing returns. A seeded
pair of artificial languages with a real grammar (:mod:`scaling_repro.data.synthetic_language`:
SVO->SOV reordering, gender agreement the source does not mark, case, postpositions, plural
prefix vs suffix, synonym collapse, context-dependent verb choice) has all three properties; a
measurement found FMT test loss falling from 2.9 to 1.9 with diminishing returns as data grew, for
~100K-400K-parameter models in minutes. Measured here with this module's data (a 140K-parameter
GPT-2 trained from scratch, 1500 steps of 32 pairs, BPE vocabulary 500, ~23 tokens per pair):
test loss 3.43 / 2.30 / 0.98 / 0.42 / 0.31 nats per target token at 100 / 300 / 1K / 3K / 10K
training pairs. Catalogs of real text were judged worse (placeholder heavy, different on every
machine) and are not provided.

Splits (all of one ``language_seed``, independent of the subset ``seed``):
- ``dev``, ``test`` sets ``test_a`` and ``test_b`` (two, like the paper's several test years),
  then the zero-shot set ``qac-qab`` (the sister language into the same target), then the
  train pool (default 50K pairs), generated in that order from fixed streams, so the evaluation
  sets do not change when the pool size does;
- no meaning occurs twice in all of these: the splits are disjoint by (canonical) target, which
  is stricter than by pair (two synonymous sources share a target);
- ``train_examples: n`` takes a nested, seeded subset of the pool
  (:mod:`scaling_repro.data.sampling`).

The pretraining corpus (:func:`pretraining_corpus`) holds monolingual sentences of qaa and
qab, some qac (so the zero-shot source is not unseen), and a share of parallel pairs, by default
formatted exactly like finetuning examples (``template(source) + target``), or in other
templates / directions (``parallel_templates``). With
monolingual data alone the base model learns no word mapping, so prompt tuning stays flat; a
small parallel share is the tiny analogue of an LLM's pretrained translation ability. No
pretraining sentence has a target (or meaning) of the finetuning pool or the evaluation sets.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from scaling_repro.data.params import TaskParams, parse_params
from scaling_repro.data.synthetic_language import (
    ROOTS,
    ZIPF_EXPONENT,
    Languages,
    build_languages,
    render_source,
    render_target,
    sample_meaning,
)
from scaling_repro.data.types import Example, TaskInfo
from scaling_repro.errors import UserError

SOURCE_LANG, TARGET_LANG, SISTER_LANG = "qaa", "qab", "qac"
ZERO_SHOT_SET = f"{SISTER_LANG}-{TARGET_LANG}"
TEST_SETS = ("test_a", "test_b")

TASK_INFO = TaskInfo(
    name="synthetic_mt",
    source_lang=SOURCE_LANG,
    target_lang=TARGET_LANG,
    metrics=("bleu", "chrf"),  # BLEURT knows no artificial language
    template="{source}\n",
    max_source_tokens=64,  # sentences have at most 20 source words (~30 tokens)
    max_target_tokens=64,
)
FINETUNING_FORMAT = TASK_INFO.template + "{target}"
"""A finetuning example as a parallel template of the pretraining corpus."""


class SyntheticParams(TaskParams):
    """Options of ``synthetic_mt`` (``task.params``)."""

    language_seed: int = Field(0, description="fixes the three languages and every split")
    train_pool: int = Field(50_000, ge=1, le=2_000_000, description="pairs the train subsets come from")
    dev_size: int = Field(500, ge=1, le=100_000)
    test_size: int = Field(500, ge=1, le=100_000, description="pairs in each of test_a and test_b")
    zero_shot_size: int = Field(500, ge=1, le=100_000, description="qac->qab pairs")
    roots: int = Field(
        80,
        ge=20,
        le=2000,
        description="content concepts of the languages: half nouns, a quarter adjectives, a quarter verbs "
        "(default 80 = 40 / 20 / 20); more roots give a longer tail of rare words",
    )
    zipf_exponent: float = Field(
        1.0,
        ge=0,
        le=3,
        description="concept frequencies follow rank**-zipf_exponent within each kind (0 = uniform, default 1); "
        "a larger exponent makes the frequent words more frequent and the rare words rarer",
    )
    free_order: float = Field(
        0.0,
        ge=0,
        le=1,
        description="chance that a qab place phrase follows the verb: word order the source does not "
        "determine, an irreducible loss floor (0 = every target fully determined)",
    )


@dataclass(frozen=True)
class SyntheticSplits:
    """Every finetuning and evaluation pair of one parameter setting."""

    train_pool: tuple[Example, ...]
    dev: tuple[Example, ...]
    test: dict[str, tuple[Example, ...]]
    zero_shot: dict[str, tuple[Example, ...]]
    reserved_targets: frozenset[str]  # canonical targets (free_order off) of every pair


@functools.lru_cache(maxsize=4)
def languages(language_seed: int, roots: int = ROOTS, zipf_exponent: float = ZIPF_EXPONENT) -> Languages:
    """Return the (cached) three languages of ``language_seed`` (and size / word frequencies)."""
    return build_languages(language_seed, roots, zipf_exponent)


def params_languages(params: SyntheticParams) -> Languages:
    """Return the languages that ``params`` describe."""
    return languages(params.language_seed, params.roots, params.zipf_exponent)


def _stream(language_seed: int, name: str) -> random.Random:
    return random.Random(f"synthetic-{name}-{language_seed}")


def _target(langs: Languages, meaning, rng: random.Random, free_order: float) -> str:
    if free_order <= 0:  # draw nothing, so the default streams never change
        return render_target(langs, meaning)
    return render_target(langs, meaning, tuple(rng.random() < free_order for _ in meaning))


def _pairs(
    langs: Languages, rng: random.Random, count: int, reserved: set[str], sister: bool, what: str, free_order: float
) -> tuple[Example, ...]:
    """``count`` pairs whose meanings are new to ``reserved`` (canonical targets, which the new
    ones are added to)."""
    lexicon = langs.sister if sister else langs.source
    out: list[Example] = []
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > 20 * count + 1000:
            raise UserError(
                f"synthetic_mt: found only {len(out)} distinct sentences for {what} after {attempts} draws; "
                "lower task.params.train_pool / dev_size / test_size"
            )
        meaning = sample_meaning(langs, rng)
        canonical = render_target(langs, meaning)
        if canonical in reserved:
            continue
        reserved.add(canonical)
        out.append(Example(render_source(lexicon, meaning), _target(langs, meaning, rng, free_order)))
    return tuple(out)


@functools.lru_cache(maxsize=4)
def build_splits(params: SyntheticParams) -> SyntheticSplits:
    """Return the (cached) dev, test, zero-shot sets and train pool of ``params``."""
    langs = params_languages(params)
    reserved: set[str] = set()
    evaluation = _stream(params.language_seed, "evaluation")
    free = params.free_order
    dev = _pairs(langs, evaluation, params.dev_size, reserved, False, "dev", free)
    test = {name: _pairs(langs, evaluation, params.test_size, reserved, False, name, free) for name in TEST_SETS}
    zero_shot = {
        ZERO_SHOT_SET: _pairs(
            langs,
            _stream(params.language_seed, "zero-shot"),
            params.zero_shot_size,
            reserved,
            True,
            ZERO_SHOT_SET,
            free,
        )
    }
    pool = _pairs(langs, _stream(params.language_seed, "train"), params.train_pool, reserved, False, "train pool", free)
    return SyntheticSplits(pool, dev, test, zero_shot, frozenset(reserved))


def synthetic_params(params: Mapping[str, Any] | None) -> SyntheticParams:
    """Return ``task.params`` of synthetic_mt validated (UserError naming task.params.X)."""
    return parse_params(SyntheticParams, params, "synthetic_mt")


def pretraining_corpus(
    num_documents: int,
    seed: int = 0,
    parallel_share: float = 0.1,
    sister_share: float = 0.1,
    params: Mapping[str, Any] | None = None,
    parallel_templates: Sequence[str] | None = None,
) -> list[str]:
    """Return ``num_documents`` pretraining documents (one sentence, or one formatted parallel
    pair, each), deterministic in ``seed``: a ``parallel_share`` of pairs, a ``sister_share`` of
    qac sentences, and the rest qaa and qab sentences in equal parts. ``params`` are the task's
    ``task.params``: no document shares a target meaning with that setting's finetuning or
    evaluation pairs.

    A pair is formatted with one of ``parallel_templates`` (format strings with ``{source}``, the
    qaa sentence, and ``{target}``, the qab sentence; drawn uniformly when there are several), by
    default the finetuning format ``TASK_INFO.template.format(source=qaa) + qab``. Another
    separator or the reverse direction keeps the word mapping in pretraining without the
    finetuning prompt."""
    if not 0 <= parallel_share <= 1 or not 0 <= sister_share <= 1 or parallel_share + sister_share > 1:
        raise UserError(
            f"pretraining shares must lie in [0, 1] and sum to at most 1, got parallel_share={parallel_share}, "
            f"sister_share={sister_share}"
        )
    if num_documents < 0:
        raise UserError(f"num_documents must be >= 0, got {num_documents}")
    templates = list(parallel_templates) if parallel_templates else [FINETUNING_FORMAT]
    for template in templates:
        if "{source}" not in template or "{target}" not in template:
            raise UserError(f"a parallel template needs {{source}} and {{target}}, got {template!r}")
        try:
            template.format(source="", target="")
        except (KeyError, IndexError, ValueError) as err:
            raise UserError(
                f"a parallel template may hold only {{source}} and {{target}} fields, got {template!r} "
                f"({type(err).__name__}: {err})"
            ) from None
    settings = synthetic_params(params)
    langs = params_languages(settings)
    reserved = build_splits(settings).reserved_targets
    rng = _stream(settings.language_seed, f"pretrain-{seed}")
    kinds = ("parallel", "sister", "source", "target")
    mono = (1.0 - parallel_share - sister_share) / 2
    weights = (parallel_share, sister_share, mono, mono)
    documents: list[str] = []
    while len(documents) < num_documents:
        kind = rng.choices(kinds, weights=weights)[0]
        meaning = sample_meaning(langs, rng)
        if render_target(langs, meaning) in reserved:
            continue
        target = _target(langs, meaning, rng, settings.free_order)
        if kind == "parallel":
            template = templates[0] if len(templates) == 1 else rng.choice(templates)  # one: no draw
            documents.append(template.format(source=render_source(langs.source, meaning), target=target))
        elif kind == "sister":
            documents.append(render_source(langs.sister, meaning))
        elif kind == "source":
            documents.append(render_source(langs.source, meaning))
        else:
            documents.append(target)
    return documents


def load_synthetic(params: Mapping[str, Any] | None) -> tuple[TaskInfo, SyntheticSplits]:
    """Return the task info and all splits of synthetic_mt for ``task.params``."""
    return TASK_INFO, build_splits(synthetic_params(params))
