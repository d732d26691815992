"""The synthetic languages (grammar), the synthetic_mt splits and the pretraining corpus."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from scaling_repro.data.synthetic import (
    TASK_INFO,
    ZERO_SHOT_SET,
    build_splits,
    languages,
    params_languages,
    pretraining_corpus,
    synthetic_params,
)
from scaling_repro.data.synthetic_language import (
    ANIMACY_VERBS,
    MAX_WORDS,
    MIN_WORDS,
    Sizes,
    render_source,
    render_target,
    sample_meaning,
    source_length,
)
from scaling_repro.errors import UserError

SMALL = {"train_pool": 2000, "dev_size": 100, "test_size": 100, "zero_shot_size": 100}


@pytest.fixture(scope="module")
def langs():
    return languages(0)


@pytest.fixture(scope="module")
def splits():
    return build_splits(synthetic_params(SMALL))


def _np(noun, plural=False, adjectives=()):
    return (noun, 0, plural, True, tuple((a, 0) for a in adjectives))


def test_languages_are_fixed_by_the_language_seed():
    assert languages(3) == languages(3)
    assert languages(3).source.nouns != languages(4).source.nouns
    assert languages(3).target.nouns != languages(4).target.nouns


def test_target_is_verb_final_with_adjectives_after_the_noun_agreeing_in_gender(langs):
    t = langs.target
    subject, obj = _np(0, adjectives=(1, 2)), _np(20, adjectives=(3,))
    meaning = ((subject, 6, 0, False, obj, None),)
    g_subject, g_object = t.gender_suffixes[t.genders[0]], t.gender_suffixes[t.genders[20]]
    verb = t.verbs[6][0 if langs.animate[20] else 1]
    assert render_target(langs, meaning).split() == [
        t.nouns[0] + t.nominative,
        t.adjectives[1] + g_subject,
        t.adjectives[2] + g_subject,
        t.nouns[20] + t.accusative,
        t.adjectives[3] + g_object,
        verb,
    ]
    s = langs.source
    assert render_source(s, meaning).split() == [
        s.definite,
        s.adjectives[1][0],
        s.adjectives[2][0],
        s.nouns[0][0],
        s.verbs[6][0],
        s.definite,
        s.adjectives[3][0],
        s.nouns[20][0],
    ]


def test_plural_is_a_target_prefix_and_a_source_suffix_and_agrees_on_the_verb(langs):
    meaning = ((_np(5, plural=True), 1, 0, True, None, None),)
    target = render_target(langs, meaning).split()
    assert target[0] == langs.target.plural_prefix + langs.target.nouns[5] + langs.target.nominative
    assert target[-1] == langs.target.verbs[1][0] + langs.target.past + langs.target.plural_subject
    assert render_source(langs.source, meaning).split()[1] == langs.source.nouns[5][0] + langs.source.plural


def test_place_phrase_uses_a_postposition_before_the_object(langs):
    meaning = ((_np(0), 10, 0, False, _np(1), (2, _np(30))),)
    target = render_target(langs, meaning).split()
    assert target[1:3] == [langs.target.nouns[30], langs.target.postpositions[2]]
    assert render_source(langs.source, meaning).split()[-3] == langs.source.prepositions[2]


def test_some_verbs_choose_their_root_by_the_objects_animacy(langs):
    variants = [v for v, (animate, other) in enumerate(langs.target.verbs) if animate != other]
    assert len(variants) == ANIMACY_VERBS
    verb = variants[0]
    animate_obj, thing = _np(0), _np(30)
    assert langs.animate[0] and not langs.animate[30]
    with_person = render_target(langs, ((_np(1), verb, 0, False, animate_obj, None),)).split()[-1]
    with_thing = render_target(langs, ((_np(1), verb, 0, False, thing, None),)).split()[-1]
    assert with_person != with_thing


def test_source_synonyms_collapse_to_one_target_word(langs):
    noun = next(i for i, forms in enumerate(langs.source.nouns) if len(forms) == 2)
    one, two = (noun, 0, False, True, ()), (noun, 1, False, True, ())
    sentences = [((phrase, 1, 0, False, None, None),) for phrase in (one, two)]
    assert render_source(langs.source, sentences[0]) != render_source(langs.source, sentences[1])
    assert render_target(langs, sentences[0]) == render_target(langs, sentences[1])


def test_sentences_have_5_to_20_source_words(langs):
    rng = random.Random(0)
    meanings = [sample_meaning(langs, rng) for _ in range(2000)]
    lengths = [len(render_source(langs.source, m).split()) for m in meanings]
    assert lengths == [source_length(m) for m in meanings]
    assert MIN_WORDS <= min(lengths) and max(lengths) <= MAX_WORDS


def test_sister_language_shares_function_words_and_about_half_the_roots(langs):
    source, sister = langs.source, langs.sister
    assert (sister.definite, sister.conjunction, sister.plural) == (source.definite, source.conjunction, source.plural)
    roots = [
        (a, c)
        for kind in ("nouns", "adjectives", "verbs")
        for forms_a, forms_c in zip(getattr(source, kind), getattr(sister, kind))
        for a, c in zip(forms_a, forms_c)
    ]
    shared = sum(a == c for a, c in roots) / len(roots)
    assert 0.3 < shared < 0.8


def test_splits_have_the_requested_sizes(splits):
    assert len(splits.train_pool) == 2000 and len(splits.dev) == 100
    assert {k: len(v) for k, v in splits.test.items()} == {"test_a": 100, "test_b": 100}
    assert len(splits.zero_shot[ZERO_SHOT_SET]) == 100


def test_splits_are_disjoint_by_target(splits):
    groups = [splits.train_pool, splits.dev, *splits.test.values(), *splits.zero_shot.values()]
    targets = [e.target for group in groups for e in group]
    assert len(targets) == len(set(targets)) == len(splits.reserved_targets)


def test_every_source_has_one_translation(splits):
    seen: dict[str, str] = {}
    for example in (*splits.train_pool, *splits.dev):
        assert seen.setdefault(example.source, example.target) == example.target


def test_evaluation_sets_do_not_depend_on_the_pool_size(splits):
    other = build_splits(synthetic_params({**SMALL, "train_pool": 500}))
    assert other.dev == splits.dev and other.test == splits.test and other.zero_shot == splits.zero_shot
    assert other.train_pool == splits.train_pool[:500]


def test_bad_params_name_the_field():
    with pytest.raises(UserError, match=r"task.params.dev_size=0"):
        synthetic_params({"dev_size": 0})
    with pytest.raises(UserError, match=r"task.params.vocab is not an option.*language_seed"):
        synthetic_params({"vocab": 500})


def test_pretraining_corpus_is_deterministic_by_seed():
    assert pretraining_corpus(300, seed=1, params=SMALL) == pretraining_corpus(300, seed=1, params=SMALL)
    assert pretraining_corpus(300, seed=1, params=SMALL) != pretraining_corpus(300, seed=2, params=SMALL)


def test_pretraining_corpus_mixes_parallel_pairs_formatted_as_finetuning_examples(langs, splits):
    documents = pretraining_corpus(2000, seed=0, parallel_share=0.2, sister_share=0.1, params=SMALL)
    parallel = [d for d in documents if "\n" in d]
    assert 0.15 < len(parallel) / len(documents) < 0.25
    source, target = parallel[0].split("\n")
    assert parallel[0] == TASK_INFO.template.format(source=source) + target
    assert pretraining_corpus(500, seed=0, parallel_share=0.0, params=SMALL)[0].count("\n") == 0


def test_pretraining_corpus_is_disjoint_from_finetuning_and_evaluation_targets(splits):
    documents = pretraining_corpus(3000, seed=0, parallel_share=0.5, sister_share=0.0, params=SMALL)
    targets = {d.split("\n")[1] for d in documents if "\n" in d}
    assert targets and not targets & splits.reserved_targets
    sources = {e.source for e in (*splits.train_pool, *splits.dev, *splits.test["test_a"])}
    assert not sources & set(documents)


def test_pretraining_corpus_formats_pairs_with_the_given_templates(langs):
    default = pretraining_corpus(400, seed=0, parallel_share=0.5, params=SMALL)
    assert (
        pretraining_corpus(400, seed=0, parallel_share=0.5, params=SMALL, parallel_templates=["{source}\n{target}"])
        == default
    )
    other = pretraining_corpus(
        400, seed=0, parallel_share=0.5, params=SMALL, parallel_templates=["{source} = {target}"]
    )
    assert not any("\n" in d for d in other)
    assert [d.replace("\n", " = ") for d in default] == other  # same pairs, same stream: only the format differs
    both = pretraining_corpus(
        2000,
        seed=0,
        parallel_share=0.5,
        params=SMALL,
        parallel_templates=["{source} = {target}", "{target} <= {source}"],
    )
    forward, backward = sum(" = " in d for d in both), sum(" <= " in d for d in both)
    assert forward > 300 and backward > 300
    with pytest.raises(UserError, match="needs {source} and {target}"):
        pretraining_corpus(10, parallel_share=0.5, params=SMALL, parallel_templates=["{source} ="])
    with pytest.raises(UserError, match="only {source} and {target}"):
        pretraining_corpus(10, parallel_share=0.5, params=SMALL, parallel_templates=["{lang}: {source} = {target}"])


def test_pretraining_shares_are_validated():
    with pytest.raises(UserError, match="sum to at most 1"):
        pretraining_corpus(10, parallel_share=0.7, sister_share=0.5, params=SMALL)


def test_free_order_moves_the_place_phrase_behind_the_verb(langs):
    meaning = ((_np(0), 10, 0, False, _np(1), (2, _np(30))),)
    fixed, free = render_target(langs, meaning).split(), render_target(langs, meaning, (True,)).split()
    assert sorted(fixed) == sorted(free) and free[-2:] == [langs.target.nouns[30], langs.target.postpositions[2]]


@pytest.mark.parametrize("free_order", [0.0, 1.0])
def test_free_order_param_controls_how_often_targets_end_in_a_place_phrase(langs, free_order):
    splits = build_splits(synthetic_params({**SMALL, "free_order": free_order}))
    ends = sum(e.target.split()[-1] in langs.target.postpositions for e in splits.train_pool) / len(splits.train_pool)
    assert (ends == 0) if free_order == 0 else (0.2 < ends < 0.5)


def test_default_languages_have_the_pilot_sizes(langs):
    assert (len(langs.source.nouns), len(langs.source.adjectives), len(langs.source.verbs)) == (40, 20, 20)
    assert langs.sizes == Sizes() == Sizes.for_roots(80)


def test_roots_param_scales_every_kind_of_concept():
    langs = params_languages(synthetic_params({"roots": 320}))
    assert (len(langs.source.nouns), len(langs.source.adjectives), len(langs.source.verbs)) == (160, 80, 80)
    assert len(langs.target.nouns) == len(langs.target.genders) == len(langs.animate) == 160
    variants = sum(animate != other for animate, other in langs.target.verbs)
    assert variants == langs.sizes.animacy_verbs == 24


def _top_noun_share(zipf_exponent: float) -> float:
    splits = build_splits(synthetic_params({**SMALL, "roots": 320, "zipf_exponent": zipf_exponent}))
    langs = params_languages(synthetic_params({"roots": 320, "zipf_exponent": zipf_exponent}))
    nouns = set(langs.target.nouns)
    counts = Counter(w for e in splits.train_pool for w in e.target.split() if w in nouns)  # singular nouns, no case
    top = langs.target.nouns[langs.noun_order[0]]
    return counts[top] / sum(counts.values())


def test_a_larger_zipf_exponent_concentrates_the_words_on_the_frequent_roots():
    assert _top_noun_share(2.0) > 2 * _top_noun_share(1.0)


def test_pretraining_corpus_speaks_the_languages_of_its_params():
    params = {**SMALL, "roots": 320}
    langs = params_languages(synthetic_params(params))
    default_roots = {w for forms in languages(0).source.nouns for w in forms}
    words = {w for d in pretraining_corpus(500, parallel_share=0.0, params=params) for w in d.split()}
    bigger_roots = {w for forms in langs.source.nouns for w in forms}
    assert words & (bigger_roots - default_roots)


@pytest.mark.parametrize("bad", [{"roots": 10}, {"zipf_exponent": -1}])
def test_roots_and_zipf_exponent_are_validated(bad):
    ((field, value),) = bad.items()
    with pytest.raises(UserError, match=rf"task.params.{field}={value}"):
        synthetic_params(bad)
