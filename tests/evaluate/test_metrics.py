"""RougeL with a multilingual tokenizer, BLEU/chrF via sacreBLEU, per-set and overall scores."""

import math

import pytest
import sacrebleu
from rouge_score.rouge_scorer import RougeScorer

from scaling_repro.evaluate.metrics import (
    ALL,
    Generations,
    bleu_tokenizer_name,
    corpus_bleu,
    corpus_chrf,
    is_chinese,
    multilingual_tokenize,
    rouge_l_scores,
    score_sets,
)

ENGLISH = [
    ("the cat sat on the mat", "the cat is sitting on the mat"),
    ("A quick brown fox, 3 times!", "the quick brown fox jumped 3 times"),
    ("nothing in common", "completely different words here"),
    ("don't stop_now: 42 apples", "do not stop now, 42 apples"),
]
GERMAN = [
    ("Die Bürger wählen über Änderungen.", "Die Bürger stimmen über Änderungen ab."),
    ("Größere Straßen führen in die Stadt", "Große Straßen führen in die Stadt"),
]
CHINESE = [("今天天气很好，我们去公园。", "今天天气不错，我们去公园散步。"), ("我喜欢学习机器翻译", "我爱机器翻译")]


def test_multilingual_tokenizer_equals_rouge_default_on_ascii():
    default = RougeScorer(["rougeL"])._tokenizer
    for pred, ref in ENGLISH:
        assert multilingual_tokenize(pred) == default.tokenize(pred)
        assert multilingual_tokenize(ref) == default.tokenize(ref)


def test_rouge_l_equals_rouge_score_reference_on_english_pairs():
    reference = RougeScorer(["rougeL"])
    expected = [100 * reference.score(ref, pred)["rougeL"].fmeasure for pred, ref in ENGLISH]
    assert rouge_l_scores(*zip(*ENGLISH)) == pytest.approx(expected)


def test_multilingual_tokenizer_keeps_accented_words_whole():
    assert multilingual_tokenize("Größere Straßen, café crème!") == ["größere", "straßen", "café", "crème"]
    assert multilingual_tokenize("Ça coûte 5€ à Noël") == ["ça", "coûte", "5", "à", "noël"]


def test_multilingual_tokenizer_splits_chinese_into_characters():
    assert multilingual_tokenize("我们去公园，OK?") == ["我", "们", "去", "公", "园", "ok"]


def test_multilingual_tokenizer_keeps_combining_marks_inside_words():
    assert multilingual_tokenize("हिन्दी भाषा") == ["हिन्दी", "भाषा"]


def test_rouge_l_scores_german_and_chinese_where_the_default_cannot():
    default = RougeScorer(["rougeL"])
    for pairs in (GERMAN, CHINESE):
        ours = rouge_l_scores(*zip(*pairs))
        assert all(0 < s < 100 for s in ours)
    # the default tokenizer sees no Chinese at all
    assert default.score(CHINESE[0][1], CHINESE[0][0])["rougeL"].fmeasure == 0
    # identical non-ASCII text scores 100 for us
    assert rouge_l_scores(["Größere Straßen 公园"], ["Größere Straßen 公园"]) == [pytest.approx(100)]


def test_rouge_l_on_chinese_counts_the_longest_common_character_subsequence():
    # LCS of the two strings is 今天天气 + 我们去公园 = 9 characters
    pred, ref = CHINESE[0]
    p, r = 9 / len(multilingual_tokenize(pred)), 9 / len(multilingual_tokenize(ref))
    assert rouge_l_scores([pred], [ref])[0] == pytest.approx(100 * 2 * p * r / (p + r))


@pytest.mark.parametrize("lang,name", [("zh", "zh"), ("zho_Hans", "zh"), ("zh-CN", "zh"), ("de", "13a"), (None, "13a")])
def test_bleu_tokenizer_is_zh_for_chinese_targets_else_13a(lang, name):
    assert bleu_tokenizer_name(lang) == name
    assert is_chinese(lang) == (name == "zh")


def test_bleu_equals_sacrebleu_13a_on_english_and_german():
    pairs = ENGLISH + GERMAN
    preds, refs = [p for p, _ in pairs], [r for _, r in pairs]
    expected = sacrebleu.corpus_bleu(preds, [refs], tokenize="13a").score
    assert corpus_bleu(preds, refs, ["en"] * len(pairs)) == pytest.approx(expected)


def test_bleu_equals_sacrebleu_zh_on_chinese():
    preds, refs = [p for p, _ in CHINESE], [r for _, r in CHINESE]
    expected = sacrebleu.corpus_bleu(preds, [refs], tokenize="zh").score
    assert corpus_bleu(preds, refs, ["zh"] * len(preds)) == pytest.approx(expected)
    assert expected != pytest.approx(sacrebleu.corpus_bleu(preds, [refs], tokenize="13a").score)


def test_chrf_equals_sacrebleu():
    pairs = ENGLISH + GERMAN + CHINESE
    preds, refs = [p for p, _ in pairs], [r for _, r in pairs]
    assert corpus_chrf(preds, refs) == pytest.approx(sacrebleu.corpus_chrf(preds, [refs]).score)


def test_score_sets_gives_each_set_and_the_concatenation():
    sets = {
        "de": Generations([p for p, _ in GERMAN], [r for _, r in GERMAN], ["de"] * 2),
        "zh": Generations([p for p, _ in CHINESE], [r for _, r in CHINESE], ["zh"] * 2),
    }
    fake_bleurt_calls = []

    def fake_bleurt(refs, cands):
        fake_bleurt_calls.append(len(refs))
        return [len(c) / 100 for c in cands]

    scores = score_sets(["bleurt", "rougeL", "bleu", "chrf"], sets, bleurt=fake_bleurt)
    assert fake_bleurt_calls == [4]  # one BLEURT pass over all sets
    assert set(scores) == {"bleurt", "rougeL", "bleu", "chrf"}
    for by_set in scores.values():
        assert set(by_set) == {"de", "zh", ALL}
    assert scores["bleurt"]["zh"] == pytest.approx(sum(len(p) for p, _ in CHINESE) / 2)
    rouge = rouge_l_scores([p for p, _ in GERMAN + CHINESE], [r for _, r in GERMAN + CHINESE])
    assert scores["rougeL"][ALL] == pytest.approx(sum(rouge) / 4)
    assert scores["bleu"]["zh"] == pytest.approx(corpus_bleu(*zip(*CHINESE), ["zh", "zh"]))
    # the overall BLEU tokenizes each segment for its own language
    mixed = corpus_bleu([p for p, _ in GERMAN + CHINESE], [r for _, r in GERMAN + CHINESE], ["de", "de", "zh", "zh"])
    assert scores["bleu"][ALL] == pytest.approx(mixed)


def test_score_sets_rejects_unknown_metrics_and_skips_empty_sets():
    with pytest.raises(ValueError, match="unknown metrics"):
        score_sets(["meteor"], {})
    scores = score_sets(["chrf"], {"a": Generations(["x y"], ["x y"], [None]), "b": Generations([], [], [])})
    assert set(scores["chrf"]) == {"a", ALL}
    assert not math.isnan(scores["chrf"][ALL])
