"""Three artificial languages with a real grammar, fixed by one language seed.

A sentence is first sampled as a *meaning* (clauses of subject, verb, object, an optional place
phrase, tense, number, definiteness, adjectives), then rendered in each language:

- ``qaa`` (source, English-like): SVO; articles (definite / indefinite, none for indefinite
  plurals); adjectives before the noun; plural suffix on the noun; past suffix on the verb;
  prepositions; about one concept in six has two synonymous words (chosen per occurrence).
- ``qab`` (target): SOV, with the place phrase before the object; no articles; adjectives after
  the noun, agreeing in *gender*, a lexical property of each noun that the source never marks;
  plural *prefix*; case suffixes (nominative, accusative); postpositions; verb suffixes for past
  tense and plural subject; synonyms of the source collapse to one word; about 30% of the
  transitive verbs (six by default) choose their root by the *object's animacy*
  (context-dependent verb choice, like "eat" vs "feed on").
- ``qac`` (zero-shot source): a sister of ``qaa`` with the same grammar and function words, in
  which about half of the content roots went through a regular sound change (p->f, t->th, ...).
  A model finetuned on qaa->qab can translate qac->qab only as far as it recognises the shared
  and the sound-shifted words: the offline analogue of the paper's zero-shot Flores transfer.

Every target word is determined by the source sentence (gender and verb variant by the words,
case and order by the syntax), so the task is learnable; optionally (``free_order``) the place
phrase may also follow the verb, a choice the source does not determine, which puts a floor
under the achievable loss like the irreducible term E of the paper's law; word choice follows a
Zipf law (frequency ~ rank**-``zipf_exponent``, default 1), so rare words and constructions keep
appearing as the data grows, which gives lower loss with diminishing returns. Sizes are
measured: ~100 roots per language (``roots`` content concepts, default 80: 40 nouns, 20
adjectives, 20 verbs; :meth:`Sizes.for_roots` scales every kind in proportion) and 5-20 source
words per sentence are learnable by a ~100K-400K-parameter model in minutes on a CPU (a
~200-root version was too hard). The ISO 639 private-use codes qaa-qac name the languages.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import accumulate

ROOTS = 80  # content concepts of the default languages: 40 nouns, 20 adjectives, 20 verbs
ZIPF_EXPONENT = 1.0
NOUNS, ANIMATE_NOUNS, ADJECTIVES, VERBS, INTRANSITIVE_VERBS, PREPOSITIONS = 40, 12, 20, 20, 5, 6
NOUN_SYNONYMS, ADJECTIVE_SYNONYMS, VERB_SYNONYMS, ANIMACY_VERBS = 8, 4, 2, 6
GENDERS = 3
MIN_WORDS, MAX_WORDS = 5, 20

_A_CONSONANTS, _A_VOWELS, _A_CODAS = "ptkbdgmnlrs", "aeiou", "nmrs"
_B_CONSONANTS, _B_VOWELS = "vzhjwxfcy", "aeiou"
_SOUND_CHANGE = {"p": "f", "t": "th", "k": "kh", "b": "w", "d": "z", "g": "gh", "o": "u"}


def _a_syllable(rng: random.Random) -> str:
    coda = rng.choice(_A_CODAS) if rng.random() < 0.3 else ""
    return rng.choice(_A_CONSONANTS) + rng.choice(_A_VOWELS) + coda


def _b_syllable(rng: random.Random) -> str:
    glide = rng.choice(_B_VOWELS) if rng.random() < 0.35 else ""
    return rng.choice(_B_CONSONANTS) + rng.choice(_B_VOWELS) + glide


def _words(rng: random.Random, syllable, count: int, syllables: tuple[int, ...], taken: set[str]) -> list[str]:
    """``count`` new distinct words of ``syllables`` syllables each (chosen uniformly)."""
    out: list[str] = []
    while len(out) < count:
        word = "".join(syllable(rng) for _ in range(rng.choice(syllables)))
        if word not in taken:
            taken.add(word)
            out.append(word)
    return out


def _zipf_cum_weights(count: int, exponent: float) -> list[float]:
    return list(accumulate(1.0 / (rank + 1) ** exponent for rank in range(count)))


@dataclass(frozen=True)
class Sizes:
    """How many concepts of each kind the languages have (``for_roots`` scales the default
    proportions: half nouns, a quarter adjectives, a quarter verbs)."""

    nouns: int = NOUNS
    animate_nouns: int = ANIMATE_NOUNS
    adjectives: int = ADJECTIVES
    verbs: int = VERBS
    intransitive_verbs: int = INTRANSITIVE_VERBS
    noun_synonyms: int = NOUN_SYNONYMS
    adjective_synonyms: int = ADJECTIVE_SYNONYMS
    verb_synonyms: int = VERB_SYNONYMS
    animacy_verbs: int = ANIMACY_VERBS

    @classmethod
    def for_roots(cls, roots: int) -> Sizes:
        """Return the sizes of languages with ``roots`` content concepts (80 gives the defaults)."""
        nouns, adjectives = roots // 2, roots // 4
        verbs = roots - nouns - adjectives
        intransitive = verbs // 4
        return cls(
            nouns=nouns,
            animate_nouns=round(0.3 * nouns),
            adjectives=adjectives,
            verbs=verbs,
            intransitive_verbs=intransitive,
            noun_synonyms=nouns // 5,
            adjective_synonyms=adjectives // 5,
            verb_synonyms=verbs // 10,
            animacy_verbs=min(round(0.3 * verbs), verbs - intransitive),
        )


@dataclass(frozen=True)
class Lexicon:
    """Words of one source-type language (qaa or qac): synonyms per concept, and affixes."""

    nouns: tuple[tuple[str, ...], ...]
    adjectives: tuple[tuple[str, ...], ...]
    verbs: tuple[tuple[str, ...], ...]
    prepositions: tuple[str, ...]
    definite: str
    indefinite: str
    conjunction: str
    plural: str
    past: str


@dataclass(frozen=True)
class TargetLexicon:
    """Words and affixes of the target language qab."""

    nouns: tuple[str, ...]
    genders: tuple[int, ...]
    adjectives: tuple[str, ...]
    verbs: tuple[tuple[str, str], ...]  # (root with an animate object, root otherwise)
    postpositions: tuple[str, ...]
    conjunction: str
    plural_prefix: str
    nominative: str
    accusative: str
    gender_suffixes: tuple[str, ...]
    past: str
    plural_subject: str


# A noun phrase: (noun, synonym index, plural, definite, ((adjective, synonym index), ...)).
NounPhrase = tuple[int, int, bool, bool, tuple[tuple[int, int], ...]]
# A clause: (subject, verb, verb synonym index, past, object or None, (preposition, phrase) or None).
Clause = tuple[NounPhrase, int, int, bool, "NounPhrase | None", "tuple[int, NounPhrase] | None"]


@dataclass(frozen=True)
class Languages:
    """The three languages of one language seed, and the concept frequencies they share."""

    sizes: Sizes
    source: Lexicon
    sister: Lexicon
    target: TargetLexicon
    animate: tuple[bool, ...]
    noun_weights: list[float]
    adjective_weights: list[float]
    verb_weights: list[float]
    noun_order: tuple[int, ...]
    adjective_order: tuple[int, ...]
    verb_order: tuple[int, ...]


def _with_synonyms(rng: random.Random, words: list[str], extra: list[str]) -> tuple[tuple[str, ...], ...]:
    forms = [[w] for w in words]
    for word, concept in zip(extra, rng.sample(range(len(words)), len(extra))):
        forms[concept].append(word)
    return tuple(tuple(f) for f in forms)


def _sound_shift(word: str) -> str:
    return "".join(_SOUND_CHANGE.get(ch, ch) for ch in word)


def build_languages(language_seed: int, roots: int = ROOTS, zipf_exponent: float = ZIPF_EXPONENT) -> Languages:
    """Return the lexicons of qaa, qab and qac for ``language_seed`` (deterministic) with
    ``roots`` content concepts whose frequencies follow a Zipf law of ``zipf_exponent``."""
    sz = Sizes.for_roots(roots)
    rng = random.Random(f"synthetic-languages-{language_seed}")
    taken: set[str] = set()
    a_nouns = _words(rng, _a_syllable, sz.nouns + sz.noun_synonyms, (2, 2, 3), taken)
    a_adjs = _words(rng, _a_syllable, sz.adjectives + sz.adjective_synonyms, (2, 3), taken)
    a_verbs = _words(rng, _a_syllable, sz.verbs + sz.verb_synonyms, (2, 2, 3), taken)
    a_function = _words(rng, _a_syllable, PREPOSITIONS + 3, (1,), taken)
    a_affixes = _words(rng, _a_syllable, 2, (1,), taken)
    source = Lexicon(
        nouns=_with_synonyms(rng, a_nouns[: sz.nouns], a_nouns[sz.nouns :]),
        adjectives=_with_synonyms(rng, a_adjs[: sz.adjectives], a_adjs[sz.adjectives :]),
        verbs=_with_synonyms(rng, a_verbs[: sz.verbs], a_verbs[sz.verbs :]),
        prepositions=tuple(a_function[:PREPOSITIONS]),
        definite=a_function[PREPOSITIONS],
        indefinite=a_function[PREPOSITIONS + 1],
        conjunction=a_function[PREPOSITIONS + 2],
        plural=a_affixes[0],
        past=a_affixes[1],
    )

    def shift(forms: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(_sound_shift(w) if rng.random() < 0.5 else w for w in f) for f in forms)

    sister = Lexicon(
        nouns=shift(source.nouns),
        adjectives=shift(source.adjectives),
        verbs=shift(source.verbs),
        prepositions=source.prepositions,
        definite=source.definite,
        indefinite=source.indefinite,
        conjunction=source.conjunction,
        plural=source.plural,
        past=source.past,
    )

    b_nouns = _words(rng, _b_syllable, sz.nouns, (2, 2, 3), taken)
    b_adjs = _words(rng, _b_syllable, sz.adjectives, (2, 3), taken)
    b_verbs = _words(rng, _b_syllable, sz.verbs + sz.animacy_verbs, (2, 3), taken)
    b_function = _words(rng, _b_syllable, PREPOSITIONS + 1, (1, 2), taken)
    b_affixes = _words(rng, _b_syllable, 5 + GENDERS, (1,), taken)
    # About 30% of the transitive verbs (six by default) get a second root, used when the object is inanimate.
    variant_verbs = rng.sample(range(sz.intransitive_verbs, sz.verbs), sz.animacy_verbs)
    verbs = [(root, root) for root in b_verbs[: sz.verbs]]
    for verb, other in zip(variant_verbs, b_verbs[sz.verbs :]):
        verbs[verb] = (verbs[verb][0], other)
    target = TargetLexicon(
        nouns=tuple(b_nouns),
        genders=tuple(rng.randrange(GENDERS) for _ in range(sz.nouns)),
        adjectives=tuple(b_adjs),
        verbs=tuple(verbs),
        postpositions=tuple(b_function[:PREPOSITIONS]),
        conjunction=b_function[PREPOSITIONS],
        plural_prefix=b_affixes[0],
        nominative=b_affixes[1],
        accusative=b_affixes[2],
        past=b_affixes[3],
        plural_subject=b_affixes[4],
        gender_suffixes=tuple(b_affixes[5:]),
    )
    # Concepts 0..sizes.animate_nouns-1 are animate; Zipf ranks are a seeded order of the concepts.
    return Languages(
        sizes=sz,
        source=source,
        sister=sister,
        target=target,
        animate=tuple(i < sz.animate_nouns for i in range(sz.nouns)),
        noun_weights=_zipf_cum_weights(sz.nouns, zipf_exponent),
        adjective_weights=_zipf_cum_weights(sz.adjectives, zipf_exponent),
        verb_weights=_zipf_cum_weights(sz.verbs, zipf_exponent),
        noun_order=tuple(rng.sample(range(sz.nouns), sz.nouns)),
        adjective_order=tuple(rng.sample(range(sz.adjectives), sz.adjectives)),
        verb_order=tuple(rng.sample(range(sz.verbs), sz.verbs)),
    )


def _pick(rng: random.Random, order: tuple[int, ...], cum_weights: list[float]) -> int:
    return order[rng.choices(range(len(order)), cum_weights=cum_weights)[0]]


def _noun_phrase(langs: Languages, rng: random.Random, max_adjectives: int) -> NounPhrase:
    noun = _pick(rng, langs.noun_order, langs.noun_weights)
    count = rng.choices((0, 1, 2), weights=(0.55, 0.35, 0.10))[0] if max_adjectives else 0
    adjectives: list[tuple[int, int]] = []
    while len(adjectives) < min(count, max_adjectives):
        adj = _pick(rng, langs.adjective_order, langs.adjective_weights)
        if all(adj != a for a, _ in adjectives):
            adjectives.append((adj, rng.randrange(len(langs.source.adjectives[adj]))))
    return (
        noun,
        rng.randrange(len(langs.source.nouns[noun])),
        rng.random() < 0.3,
        rng.random() < 0.5,
        tuple(adjectives),
    )


def _clause(langs: Languages, rng: random.Random) -> Clause:
    verb = _pick(rng, langs.verb_order, langs.verb_weights)
    obj = _noun_phrase(langs, rng, 2) if verb >= langs.sizes.intransitive_verbs else None
    place = (rng.randrange(PREPOSITIONS), _noun_phrase(langs, rng, 1)) if rng.random() < 0.35 else None
    return (
        _noun_phrase(langs, rng, 2),
        verb,
        rng.randrange(len(langs.source.verbs[verb])),
        rng.random() < 0.4,
        obj,
        place,
    )


def _np_words(phrase: NounPhrase) -> int:
    _, _, plural, definite, adjectives = phrase
    return (1 if definite or not plural else 0) + len(adjectives) + 1


def source_length(meaning: tuple[Clause, ...]) -> int:
    """Words of the meaning's source rendering (the same in qaa and qac)."""
    words = len(meaning) - 1  # conjunctions
    for subject, _, _, _, obj, place in meaning:
        words += _np_words(subject) + 1 + (_np_words(obj) if obj else 0) + (1 + _np_words(place[1]) if place else 0)
    return words


def sample_meaning(langs: Languages, rng: random.Random) -> tuple[Clause, ...]:
    """Return a random sentence meaning: one clause, or two joined by 'and' (25%), whose source
    rendering has MIN_WORDS to MAX_WORDS words."""
    while True:
        meaning = (_clause(langs, rng),) + ((_clause(langs, rng),) if rng.random() < 0.25 else ())
        if MIN_WORDS <= source_length(meaning) <= MAX_WORDS:
            return meaning


def _source_np(lex: Lexicon, phrase: NounPhrase) -> list[str]:
    noun, syn, plural, definite, adjectives = phrase
    article = [lex.definite] if definite else ([] if plural else [lex.indefinite])
    return (
        article
        + [lex.adjectives[a][s] for a, s in adjectives]
        + [lex.nouns[noun][syn] + (lex.plural if plural else "")]
    )


def render_source(lex: Lexicon, meaning: tuple[Clause, ...]) -> str:
    """Render a meaning in a source-type language (qaa, or qac with the sister lexicon)."""
    clauses = []
    for subject, verb, syn, past, obj, place in meaning:
        words = _source_np(lex, subject) + [lex.verbs[verb][syn] + (lex.past if past else "")]
        if obj is not None:
            words += _source_np(lex, obj)
        if place is not None:
            words += [lex.prepositions[place[0]]] + _source_np(lex, place[1])
        clauses.append(" ".join(words))
    return f" {lex.conjunction} ".join(clauses)


def _target_np(lex: TargetLexicon, phrase: NounPhrase, case: str) -> list[str]:
    noun, _, plural, _, adjectives = phrase
    head = (lex.plural_prefix if plural else "") + lex.nouns[noun] + case
    gender = lex.gender_suffixes[lex.genders[noun]]
    return [head] + [lex.adjectives[a] + gender for a, _ in adjectives]


def render_target(langs: Languages, meaning: tuple[Clause, ...], place_after_verb: tuple[bool, ...] = ()) -> str:
    """Render a meaning in the target language qab; a true ``place_after_verb[i]`` moves clause
    i's place phrase behind its verb (free word order, see ``free_order`` in synthetic.py)."""
    lex = langs.target
    clauses = []
    for i, (subject, verb, _, past, obj, place) in enumerate(meaning):
        late = i < len(place_after_verb) and place_after_verb[i]
        words = _target_np(lex, subject, lex.nominative)
        place_words = [] if place is None else _target_np(lex, place[1], "") + [lex.postpositions[place[0]]]
        if not late:
            words += place_words
        if obj is not None:
            words += _target_np(lex, obj, lex.accusative)
        animate_object = obj is None or langs.animate[obj[0]]
        root = lex.verbs[verb][0 if animate_object else 1]
        words.append(root + (lex.past if past else "") + (lex.plural_subject if subject[2] else ""))
        if late:
            words += place_words
        clauses.append(" ".join(words))
    return f" {lex.conjunction} ".join(clauses)
