"""evaluate_model end to end on a tiny model: the EvalResult fills the RunRecord's fields."""

import json

import pytest
import torch
from peft import PromptTuningConfig, TaskType, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

import scaling_repro.evaluate.run as run_module
from scaling_repro.config.recipe import EvalConfig
from scaling_repro.data.collate import collate_for_lm, encode_examples
from scaling_repro.data.types import Example, TaskData, TaskInfo
from scaling_repro.errors import UserError
from scaling_repro.evaluate.bleurt import CHECKPOINT_ENV
from scaling_repro.evaluate.perplexity import corpus_nll
from scaling_repro.evaluate.run import MEAN, evaluate_model, write_generations
from scaling_repro.models.tokenizer import train_tokenizer
from scaling_repro.results import ZERO_SHOT_LOSS, RunRecord

INFO = TaskInfo(
    name="toy", source_lang="en", target_lang="de", metrics=("rougeL", "bleu", "chrf"), template="{source} =>"
)
WORDS = "cat dog tree house red blue big small runs sits".split()


def pair(i):
    return Example(
        f"{WORDS[i % 10]} {WORDS[(3 * i) % 10]} {WORDS[(7 * i) % 10]}", f"{WORDS[(9 * i) % 10]} {WORDS[i % 7]}"
    )


TASK = TaskData(
    info=INFO,
    train=[pair(i) for i in range(12)],
    dev=[pair(i) for i in range(12, 15)],
    test={"set_a": [pair(i) for i in range(15, 20)], "set_b": [pair(i) for i in range(20, 23)]},
    zero_shot={"fr-de": [pair(i) for i in range(23, 26)], "zh-de": [pair(i) for i in range(26, 28)]},
)
EVAL = EvalConfig(batch_size=4, max_new_tokens=4, zero_shot=True, few_shot=[1, 2])


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    texts = [e.source + " => " + e.target for e in TASK.train + TASK.dev]
    return train_tokenizer(texts * 3, vocab_size=120, out_dir=tmp_path_factory.mktemp("tok"), min_frequency=1)


def tiny_llama(vocab_size):
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        intermediate_size=64,
        vocab_size=vocab_size,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_llama(len(tokenizer))


@pytest.fixture(scope="module")
def result(model, tokenizer):
    return evaluate_model(model, tokenizer, TASK, EVAL, seed=0)


def test_result_fills_the_run_record(result):
    record = RunRecord(
        run_id="x", name="toy", status="ok", spec={}, task="toy", method="full", model="tiny", **result.record_fields()
    )
    assert set(record.test_losses) == {"set_a", "set_b"}
    assert set(record.metrics) == {"rougeL", "bleu", "chrf"}
    assert all(set(by_set) == {"set_a", "set_b", "all"} for by_set in record.metrics.values())
    assert set(record.few_shot) == {"1", "2"}
    assert all(set(by_set) == {"set_a", "set_b", "all"} for m in record.few_shot.values() for by_set in m.values())
    assert record.num_examples["test"] == 8 and record.num_examples["train"] == 12
    assert record.num_examples["test/set_a"] == 5 and record.num_examples["zero_shot/zh-de"] == 2


def test_zero_shot_mean_averages_the_directions(result):
    for by_direction in result.zero_shot.values():
        assert set(by_direction) == {"fr-de", "zh-de", MEAN}
        assert by_direction[MEAN] == pytest.approx((by_direction["fr-de"] + by_direction["zh-de"]) / 2)


def direct_loss(model, tokenizer, examples) -> float:
    """Token-level NLL of ``examples`` scored in one padded batch, outside evaluate_model."""
    encoded = encode_examples(tokenizer, examples, INFO, log_counts=False)
    return corpus_nll(model, [collate_for_lm(encoded, tokenizer.pad_token_id)]).mean


def test_test_loss_is_over_the_concatenated_test_sets(result, model, tokenizer):
    expected = direct_loss(model, tokenizer, TASK.test["set_a"] + TASK.test["set_b"])
    assert result.test_loss == pytest.approx(expected, rel=1e-5)


def test_zero_shot_loss_is_teacher_forced_over_every_pair_of_each_direction(result, model, tokenizer):
    for name, examples in TASK.zero_shot.items():
        expected = direct_loss(model, tokenizer, examples)
        assert result.zero_shot[ZERO_SHOT_LOSS][name] == pytest.approx(expected, rel=1e-5)
        assert result.num_examples[f"zero_shot_loss/{name}"] == len(examples)


def test_zero_shot_loss_needs_no_decoding(model, tokenizer, monkeypatch):
    monkeypatch.setattr(run_module, "greedy_generate", lambda *a, **k: pytest.fail("decoded"))
    scored = evaluate_model(model, tokenizer, TASK, EvalConfig(generate=False, zero_shot=True))
    assert set(scored.zero_shot) == {ZERO_SHOT_LOSS}


def test_zero_shot_loss_uses_every_pair_when_decoding_is_capped(model, tokenizer):
    capped = evaluate_model(
        model, tokenizer, TASK, EvalConfig(max_new_tokens=2, max_generate_examples=1, metrics=["chrf"], zero_shot=True)
    )
    assert capped.num_examples["zero_shot/fr-de"] == 1 and capped.num_examples["zero_shot_loss/fr-de"] == 3


def test_generations_are_kept_for_rescoring(result, tmp_path):
    kinds = [row["kind"] for row in result.generations]
    assert kinds.count("test") == 8 and kinds.count("zero_shot") == 5
    assert kinds.count("1-shot") == 8 and kinds.count("2-shot") == 8
    path = write_generations(tmp_path, result)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == result.generations
    assert {"source", "reference", "prediction", "lang", "set"} <= set(rows[0])


def test_max_generate_examples_caps_each_set(model, tokenizer):
    capped = evaluate_model(
        model, tokenizer, TASK, EvalConfig(max_new_tokens=2, max_generate_examples=2, metrics=["chrf"])
    )
    assert capped.num_examples["generated"] == 4
    assert capped.num_examples["test"] == 8  # the loss still uses every test example


def test_missing_bleurt_checkpoint_fails_before_any_decoding(model, tokenizer, monkeypatch):
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    monkeypatch.setattr(run_module, "greedy_generate", lambda *a, **k: pytest.fail("decoded before failing"))
    with pytest.raises(UserError, match="bleurt"):
        evaluate_model(model, tokenizer, TASK, EvalConfig(metrics=["bleurt"]))


def test_bleurt_is_scored_from_the_configured_checkpoint(model, tokenizer, tmp_path):
    from tests.helpers.bleurt_checkpoint import CORPUS, train_spm, write_checkpoint

    write_checkpoint(tmp_path / "bleurt", train_spm(tmp_path / "spm", CORPUS + WORDS, vocab_size=200))
    cfg = EvalConfig(max_new_tokens=3, metrics=["bleurt", "chrf"], bleurt_checkpoint=str(tmp_path / "bleurt"))
    scored = evaluate_model(model, tokenizer, TASK, cfg, compute_loss=False)
    assert set(scored.metrics["bleurt"]) == {"set_a", "set_b", "all"}
    assert scored.test_loss is None


def test_prompt_tuned_model_is_evaluated(tokenizer):
    config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3)
    tuned = get_peft_model(tiny_llama(len(tokenizer)), config)
    out = evaluate_model(tuned, tokenizer, TASK, EvalConfig(max_new_tokens=3, metrics=["chrf"], few_shot=[1]))
    assert set(out.test_losses) == {"set_a", "set_b"} and set(out.few_shot) == {"1"}
    assert len([row for row in out.generations if row["kind"] == "test"]) == 8
