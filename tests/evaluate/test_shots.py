"""Few-shot prompts: seeded demonstrations, training-time tokenization, length limit."""

import pytest

from scaling_repro.data.collate import encode_prompt
from scaling_repro.data.types import Example, TaskInfo
from scaling_repro.errors import UserError
from scaling_repro.evaluate.shots import (
    SEPARATOR,
    cut_at_separator,
    few_shot_prompt,
    few_shot_prompts,
    sample_demonstrations,
)
from scaling_repro.models.tokenizer import train_tokenizer

INFO = TaskInfo(name="toy", source_lang="en", target_lang="de", metrics=("bleu",), template="{source} =>")
WORDS = "cat dog tree house red blue big small runs sits".split()
TRAIN = [Example(f"{WORDS[i % 10]} {WORDS[(3 * i) % 10]}", f"{WORDS[(7 * i) % 10]} {i}") for i in range(20)]
QUERIES = [Example("big red house", "x"), Example("small blue cat", "y"), Example("dog", "z")]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    texts = [e.source + " => " + e.target + SEPARATOR for e in TRAIN + QUERIES]
    return train_tokenizer(texts * 3, vocab_size=150, out_dir=tmp_path_factory.mktemp("tok"), min_frequency=1)


def test_demonstrations_are_deterministic_under_the_seed():
    first = sample_demonstrations(TRAIN, num_queries=3, shots=5, seed=7)
    assert first == sample_demonstrations(TRAIN, num_queries=3, shots=5, seed=7)
    assert first != sample_demonstrations(TRAIN, num_queries=3, shots=5, seed=8)
    assert all(len(demos) == 5 and len(set(demos)) == 5 for demos in first)
    assert first[0] != first[1]  # every query gets its own draw


def test_few_shot_prompts_are_deterministic_under_the_seed(tokenizer):
    def build(seed):
        return few_shot_prompts(tokenizer, TRAIN, QUERIES, INFO, shots=2, seed=seed)

    assert build(3) == build(3)
    assert build(3) != build(4)


def test_prompt_is_demonstrations_then_the_query_as_in_training(tokenizer):
    demos = TRAIN[:2]
    ids = few_shot_prompt(tokenizer, demos, QUERIES[0], INFO)
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    query = encode_prompt(tokenizer, QUERIES[0], INFO)
    assert ids[-(len(query) - 1) :] == query[1:]
    expected_text = "".join(f"{d.source} =>{d.target}{SEPARATOR}" for d in demos) + f"{QUERIES[0].source} =>"
    assert tokenizer.decode(ids, skip_special_tokens=True) == expected_text


def test_long_prompts_lose_demonstration_tokens_from_the_start(tokenizer):
    full = few_shot_prompt(tokenizer, TRAIN[:5], QUERIES[0], INFO)
    query = encode_prompt(tokenizer, QUERIES[0], INFO)
    cut = few_shot_prompt(tokenizer, TRAIN[:5], QUERIES[0], INFO, max_prompt_tokens=len(query) + 6)
    assert len(cut) == len(query) + 6
    assert cut[0] == tokenizer.bos_token_id  # BOS and the whole query survive
    assert cut[1:] == full[len(full) - (len(query) - 1) - 6 :]


def test_too_few_training_examples_is_a_user_error():
    with pytest.raises(UserError, match="few_shot=5 needs at least 5 training examples"):
        sample_demonstrations(TRAIN[:3], 1, 5, seed=0)


def test_continuation_is_cut_at_the_next_blank_line():
    assert cut_at_separator(" der Hund \n\ncat => Katze") == "der Hund"
    assert cut_at_separator("eine Zeile\nnoch eine") == "eine Zeile\nnoch eine"
