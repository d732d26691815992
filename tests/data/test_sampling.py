"""Seeded training subsets: determinism, nesting, language mix, skipped examples."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from scaling_repro.data import sampling
from scaling_repro.data.sampling import (
    ListPool,
    language_schedule,
    pair_hash,
    read_examples,
    sample_examples,
    sample_rows,
)
from scaling_repro.data.token_cache import examples_digest
from scaling_repro.data.types import Example
from scaling_repro.errors import UserError


def _pool(lang: str | None, n: int) -> ListPool:
    return ListPool([Example(f"{lang} source {i}", f"{lang} target {i}", lang) for i in range(n)])


def _sample(pools, n, seed=0, **kwargs):
    return sample_examples(pools, n, seed, field="task.train_examples", pool_name="toy train", **kwargs)


def test_same_seed_gives_the_same_subset_and_other_seeds_differ():
    pools = {None: _pool(None, 500)}
    assert _sample(pools, 50, seed=3) == _sample(pools, 50, seed=3)
    assert _sample(pools, 50, seed=3) != _sample(pools, 50, seed=4)


def test_subsets_of_one_seed_are_nested_prefixes():
    pools = {None: _pool(None, 2000)}
    large = _sample(pools, 1000, seed=7)
    assert _sample(pools, 100, seed=7) == large[:100]
    assert len(set(large)) == 1000


def test_all_examples_when_n_is_none():
    pools = {None: _pool(None, 40)}
    assert sorted(e.source for e in _sample(pools, None)) == sorted(e.source for e in pools[None].examples)


def test_n_larger_than_the_pool_names_both_numbers():
    with pytest.raises(UserError, match=r"task.train_examples=41 is larger than the 40 examples of toy train"):
        _sample({None: _pool(None, 40)}, 41)


@pytest.mark.parametrize("seed", [0, 1])
def test_language_mix_of_the_full_pool_holds_within_one_example_at_every_n(seed):
    sizes = {"de": 22, "es": 27, "fr": 39, "en": 29}
    pools = {lang: _pool(lang, size) for lang, size in sizes.items()}
    total = sum(sizes.values())
    full = _sample(pools, total, seed=seed)
    for n in (1, 10, 50):
        assert _sample(pools, n, seed=seed) == full[:n]
    for n in range(1, total + 1):
        prefix = full[:n]
        for lang, size in sizes.items():
            assert abs(sum(e.lang == lang for e in prefix) - n * size / total) < 1


def test_language_schedule_uses_every_example_of_the_full_pool():
    sizes = {"a": 3, "b": 10, "c": 1}
    schedule = language_schedule(sizes, 14)
    assert {lang: schedule.count(lang) for lang in sizes} == sizes


def test_empty_and_duplicate_examples_are_skipped_counted_and_replaced(caplog):
    examples = [Example(f"s{i}", f"t{i}") for i in range(20)]
    examples[3] = Example("s3", " ")
    examples[4] = Example("s5", "t5")  # same pair as index 5
    with caplog.at_level(logging.WARNING):
        subset = _sample({None: ListPool(examples)}, None)
    assert len(subset) == 18 and len(set(subset)) == 18
    assert "skipped 1 examples with an empty source or target and 1 duplicate pairs" in caplog.text
    assert len(_sample({None: ListPool(examples)}, 18)) == 18


def test_too_few_usable_examples_is_an_error_with_the_counts():
    examples = [Example("same", "pair")] * 10
    with pytest.raises(UserError, match=r"needs more examples than the 10 of toy train \(0 empty and 9 duplicate"):
        _sample({None: ListPool(examples)}, 5)


def test_evaluation_caps_keep_duplicates_when_asked():
    examples = [Example("same", "pair")] * 10
    assert len(_sample({None: ListPool(examples)}, 5, dedupe=False)) == 5


class _CountingPool(ListPool):
    """A ListPool that records the size of every read."""

    def __init__(self, examples):
        super().__init__(examples)
        object.__setattr__(self, "reads", [])

    def take(self, indices):
        self.reads.append(len(indices))
        return super().take(indices)


def test_request_beyond_the_raw_pool_fails_before_reading_it_and_names_the_option():
    pool = _CountingPool([Example(f"s{i}", f"t{i}") for i in range(40)])
    with pytest.raises(UserError, match=r"=41 is larger than the 40 examples.*task.params.short_pool=whole_pool"):
        _sample({None: pool}, 41)
    assert pool.reads == []


def test_walk_that_runs_out_after_dropping_duplicates_names_dedupe_and_short_pool():
    examples = [Example(f"s{i % 5}", f"t{i % 5}") for i in range(10)]
    with pytest.raises(UserError, match=r"5 duplicate ones skipped\); set task.params.dedupe=false.*short_pool"):
        _sample({None: ListPool(examples)}, 8)


def test_without_dedupe_duplicate_pairs_count_as_the_raw_pairs_they_are():
    examples = [Example(f"s{i % 5}", f"t{i % 5}") for i in range(10)]
    assert len(_sample({None: ListPool(examples)}, 10, dedupe=False)) == 10


def test_whole_pool_option_takes_every_usable_example_and_marks_the_subset(caplog):
    examples = [Example(f"s{i % 5}", f"t{i % 5}") for i in range(10)] + [Example("", "t")]
    pools = {None: ListPool(examples)}
    with caplog.at_level(logging.WARNING):
        sampled = sample_rows(pools, 100, 0, field="task.train_examples", pool_name="toy train", whole_pool=True)
    assert len(sampled) == 5 and sampled.whole_pool
    assert "task.train_examples=100 is more than its 5 usable examples: training on all 5" in caplog.text
    assert not sample_rows(pools, 3, 0, field="f", pool_name="p", whole_pool=True).whole_pool


def test_whole_pool_option_with_languages_takes_every_language_whole():
    pools = {"de": _pool("de", 4), "fr": _pool("fr", 6)}
    sampled = sample_rows(pools, 50, 0, field="f", pool_name="p", whole_pool=True)
    assert sampled.whole_pool and sorted(np.bincount(sampled.pools).tolist()) == [4, 6]


def test_pools_are_read_in_chunks_of_at_most_the_bound(monkeypatch):
    monkeypatch.setattr(sampling, "MAX_CHUNK_ROWS", 1500)
    pool = _CountingPool([Example(f"s{i}", f"t{i}") for i in range(9000)])
    assert len(sample_rows({None: pool}, None, 0, field="f", pool_name="p")) == 9000
    assert max(pool.reads) == 1500 and sum(pool.reads) == 9000


def test_subset_rows_read_back_as_the_sampled_examples_with_their_digest():
    pools = {"de": _pool("de", 30), "fr": _pool("fr", 20)}
    sampled = sample_rows(pools, 25, 4, field="f", pool_name="p")
    examples = read_examples([pools[key] for key in sampled.keys], sampled.pools, sampled.rows)
    assert examples == _sample(pools, 25, seed=4)
    assert sampled.digest == examples_digest(list(examples))


def test_pair_hash_keeps_the_boundary_between_source_and_target():
    assert pair_hash("ab", "c") != pair_hash("a", "bc")
    assert pair_hash("a", "b") == pair_hash("a", "b") < 2**64
