"""GPU-hour estimates (scaling_repro.launch.cost) and how `scaling-repro validate` shows them."""

import re

import pytest

from scaling_repro.cli import main
from scaling_repro.config.recipe import RunSpec
from scaling_repro.launch.cost import (
    DEV_EXAMPLES,
    CostAssumptions,
    config_flops_shape,
    config_matmul_params,
    gpu_hours,
    run_cost,
)
from tests.helpers.factories import build_run_spec

WMT_LENGTH = 256 + 256  # wmt14_en_de source + target caps
WMT_TARGETS = 256  # the target cap's share of them: where logits are computed


def spec(method: dict, train: dict | None = None, task: dict | None = None, model: str = "paper-1b") -> RunSpec:
    return build_run_spec(
        name="cost",
        task={"name": "wmt14_en_de", "train_examples": 100_000, **(task or {})},
        model={"name": model},
        method=method,
        train={"max_steps": 2_500, "max_epochs": 100, "eval_every": 1000, **(train or {})},
    )


def test_matmul_parameters_of_a_config_are_every_linear_layer_plus_the_lm_head():
    from scaling_repro.models.configs import architecture_counts, get_architecture

    for name in ("paper-1b", "paper-16b", "tiny-s"):
        arch = get_architecture(name)
        norms = (2 * arch.layers + 1) * arch.model_dim  # RMSNorm scales: not matmuls
        assert config_matmul_params(name) == architecture_counts(name).total - norms


def attention_flops_per_squared_token(name: str = "paper-1b") -> int:
    """12 L (H Q): the attention FLOPs of a sequence of T tokens are this x T^2."""
    _, layers, attention_dim = config_flops_shape(name)
    return 12 * layers * attention_dim


def head_params(name: str = "paper-1b") -> int:
    """The LM head's matmul parameters: the tied 256K-entry embedding, V x d."""
    from scaling_repro.models.configs import get_architecture

    arch = get_architecture(name)
    return arch.listing_vocab_size * arch.model_dim


def test_the_lm_head_is_the_listed_vocabulary_times_the_model_dim():
    from scaling_repro.launch.cost import config_model_flops

    assert config_model_flops("paper-1b").head_total == head_params() == 256_000 * 2048


def test_fmt_costs_six_flops_per_parameter_and_token_plus_attention_over_the_step_budget():
    cost = run_cost(spec({"kind": "full", "batch_size": 128}))
    n, attention, head = config_matmul_params("paper-1b"), attention_flops_per_squared_token(), head_params()
    examples = 2_500 * 128
    assert cost.train_tokens == examples * WMT_LENGTH
    lm_head_at_targets = 6 * head * examples * WMT_TARGETS
    assert cost.train_flops == pytest.approx(
        6 * (n - head) * cost.train_tokens + lm_head_at_targets + attention * examples * WMT_LENGTH**2
    )


def test_epoch_limit_caps_tokens_when_the_data_is_small():
    cost = run_cost(spec({"kind": "lora"}, train={"max_epochs": 2}, task={"train_examples": 8_000}))
    assert cost.train_tokens == 2 * 8_000 * WMT_LENGTH
    assert cost.steps == 2 * 8_000 // 16


def test_pet_skips_weight_gradients_and_prompt_tokens_lengthen_every_sequence():
    n, attention, head = config_matmul_params("paper-1b"), attention_flops_per_squared_token(), head_params()
    examples = 2_500 * 16
    lora = run_cost(spec({"kind": "lora"}))
    prompt = run_cost(spec({"kind": "prompt", "prompt_length": 300}))
    lm_head = 4 * head * examples * WMT_TARGETS  # virtual tokens get no logits
    assert lora.train_flops == pytest.approx(
        4 * (n - head) * examples * WMT_LENGTH + lm_head + attention * examples * WMT_LENGTH**2
    )
    length = WMT_LENGTH + 300
    assert prompt.train_flops == pytest.approx(
        4 * (n - head) * examples * length + lm_head + attention * examples * length**2
    )
    assert prompt.train_tokens == lora.train_tokens  # virtual tokens cost FLOPs but are not data


def test_dev_evaluations_are_a_forward_pass_every_interval_and_at_the_end():
    n, attention, head = config_matmul_params("paper-1b"), attention_flops_per_squared_token(), head_params()
    dev = DEV_EXAMPLES["wmt14_en_de"]
    cost = run_cost(spec({"kind": "lora"}))  # 2,500 steps: evals at 1000, 2000, 2500
    forward = 2 * (n - head) * dev * WMT_LENGTH + 2 * head * dev * WMT_TARGETS + attention / 3 * dev * WMT_LENGTH**2
    assert cost.eval_flops == pytest.approx(forward * 3)
    capped = run_cost(spec({"kind": "lora"}, task={"dev_examples": 500}))
    assert capped.eval_flops == pytest.approx(cost.eval_flops * 500 / dev)


def test_estimate_counts_what_the_trainer_counts_for_its_mfu():
    from scaling_repro.models.configs import build_config, build_model, get_architecture
    from scaling_repro.train.throughput import ModelFlops

    run = spec({"kind": "full", "batch_size": 16}, model="tiny-s")
    cost = run_cost(run, tokens_per_example=66)
    trainer = ModelFlops.of(
        build_model(build_config("tiny-s", get_architecture("tiny-s").listing_vocab_size), device="meta")
    )
    examples = 2_500 * 16
    assert cost.train_tokens == examples * 66
    assert cost.train_flops == pytest.approx(
        trainer.training_flops(examples * 66, examples * 66**2, examples, logit_positions=examples * 33)
    )


def test_an_untrained_run_costs_nothing():
    cost = run_cost(spec({"kind": "full"}, train={"max_steps": 0}))
    assert cost.flops == 0


def test_hub_models_are_sized_by_their_name():
    cost = run_cost(spec({"kind": "lora"}, model="EleutherAI/pythia-1.4b"))
    assert cost.matmul_params == 1.4e9


def test_gpu_hours_scale_inversely_with_mfu_and_peak():
    run = spec({"kind": "full"})
    base = gpu_hours(run, CostAssumptions(mfu=0.4, peak_flops=989e12))
    assert gpu_hours(run, CostAssumptions(mfu=0.2, peak_flops=989e12)) == pytest.approx(2 * base)
    assert base == pytest.approx(run_cost(run).flops / (0.4 * 989e12) / 3600)
    with pytest.raises(ValueError, match="mfu"):
        CostAssumptions(mfu=1.5)


def write_recipe(tmp_path) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: c\ntask: {name: wmt14_en_de}\nmodel: {name: paper-1b}\nmethod: {kind: lora}\n"
        "train: {max_steps: 1000}\nsweep: {grid: {task.train_examples: [8000, 80000]}}\n"
    )
    return str(path)


def test_validate_prints_each_runs_estimate_and_the_total(tmp_path, capsys):
    recipe = write_recipe(tmp_path)
    assert main(["validate", recipe, "--mfu", "0.5", "--peak-tflops", "312"]) == 0
    out = capsys.readouterr().out
    from scaling_repro.config.sweep import load_runs

    assumptions = CostAssumptions(mfu=0.5, peak_flops=312e12)
    expected = [gpu_hours(run, assumptions) for run in load_runs(recipe).runs]
    assert "gpu_h" in out.splitlines()[1]
    total = re.search(r"estimated GPU-hours: ([\d.,]+) for 2 run\(s\)", out)
    assert total and float(total.group(1).replace(",", "")) == pytest.approx(sum(expected), rel=1e-2)
    assert "50% MFU of 312 TFLOP/s" in out


def test_validate_takes_the_real_tokens_per_example(tmp_path, capsys):
    recipe = write_recipe(tmp_path)
    totals = []
    for extra in ([], ["--tokens-per-example", "66"]):
        assert main(["validate", recipe, *extra]) == 0
        totals.append(
            float(re.search(r"estimated GPU-hours: ([\d.,]+)", capsys.readouterr().out).group(1).replace(",", ""))
        )
    assert totals[1] < totals[0] / 4  # 66 real tokens instead of the 512-token cap


def test_validate_refuses_an_impossible_mfu(tmp_path, capsys):
    assert main(["validate", write_recipe(tmp_path), "--mfu", "0"]) == 2
    assert "--mfu" in capsys.readouterr().err


def test_validate_checks_a_pretraining_recipe_with_its_own_schema(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("models: [paper-1b]\ntoken_budget: 1_000_000\nseq_len: 100\nbatch_size: 10\n")
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "pretraining recipe, 1 model(s)" in out and "1,000 steps of 1,000 tokens" in out
    path.write_text("models: [paper-3b]\n")
    assert main(["validate", str(path)]) == 2
    assert "models: got ['paper-3b']; unknown config 'paper-3b'" in capsys.readouterr().err
