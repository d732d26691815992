"""Peak GPU memory traced on fake tensors: no real memory, grows with the batch, and evaluation
computes logits at the target tokens only."""

from __future__ import annotations

import dataclasses

import pytest

from scaling_repro.launch.memory_trace import Shape, trace_shape

pytestmark = pytest.mark.slow  # each trace runs a model on fake tensors: seconds

TINY = Shape(
    model="tiny-s",
    method="lora",
    pet_size=4,
    weights_dtype="float32",
    zero_stage=0,
    world=1,
    checkpointing=False,
    micro_batch=4,
    length=64,
    target_tokens=32,
    eval_batch=4,
    generate_batch=4,
    prompt_tokens=32,
    new_tokens=8,
)


@pytest.fixture(scope="module")
def tiny():
    return trace_shape(TINY)


def test_a_trace_gives_train_and_eval_peaks_above_the_fixed_allowance(tiny):
    assert tiny.train_bytes > 2 * 2**30 and tiny.eval_bytes > 2 * 2**30


def test_a_larger_micro_batch_traces_more_training_memory(tiny):
    assert trace_shape(dataclasses.replace(TINY, micro_batch=16)).train_bytes > tiny.train_bytes


def test_prompt_tuning_and_full_finetuning_trace_too():
    for method, size in (("prompt", 8), ("full", 0)):
        estimate = trace_shape(dataclasses.replace(TINY, method=method, pet_size=size))
        assert estimate.train_bytes > 0 and estimate.eval_bytes > 0


def test_an_evaluation_only_run_has_no_training_peak():
    estimate = trace_shape(dataclasses.replace(TINY, trains=False))
    assert estimate.train_bytes is None and estimate.eval_bytes > 2 * 2**30


def test_views_of_the_weights_are_not_counted_as_new_memory():
    """Evaluation of a deeper model grows by its extra layers' weights, not twice that."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    from scaling_repro.launch.memory_fake_run import fake_model, peak

    sizes = {}
    for depth in (2, 4):
        with FakeTensorMode(allow_non_fake_inputs=True):
            model = fake_model(dataclasses.replace(TINY, method="full", pet_size=0), depth, training=False)
            ids = torch.zeros((1, 1), dtype=torch.long)
            with torch.no_grad():
                sizes[depth] = peak(lambda: model(input_ids=ids, use_cache=False), model)  # noqa: B023
    weights_growth = sizes[4]["params"] - sizes[2]["params"]
    assert sizes[4]["total"] - sizes[2]["total"] == pytest.approx(weights_growth, rel=0.01)


def test_validate_memory_prints_train_and_eval_gb_per_run(tmp_path, capsys):
    from scaling_repro.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: m\ntask: {name: wmt14_en_de, max_source_tokens: 24, max_target_tokens: 8}\n"
        "model: {name: tiny-s, init: random, tokenizer: none}\nmethod: {kind: lora}\n"
        "train: {max_steps: 10, micro_batch_size: 2}\neval: {batch_size: 2}\n"
        "sweep: {grid: {method.rank: [2, 4]}}\n"
    )
    assert main(["validate", str(recipe), "--memory"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("#"))
    assert header.split()[-2:] == ["train_gb", "eval_gb"]
    rows = [line.split() for line in lines if line[:1].isdigit()]
    assert len(rows) == 2 and all(float(r[-2]) > 2 and float(r[-1]) > 2 for r in rows)
