"""`scaling-repro run` / `evaluate`: one RunSpec end to end on a tiny random model."""

import math
import subprocess
import sys

import pytest
import torch

from scaling_repro.cli import main
from scaling_repro.config.sweep import load_runs
from scaling_repro.pipeline import reevaluate, run_spec
from scaling_repro.results import SPEC_FILE, read_record


def test_run_writes_a_complete_record(recipe, capsys):
    assert main(["run", str(recipe)]) == 0
    spec = load_runs(recipe).runs[0]
    record = read_record(spec.run_dir)
    assert record.ok and record.run_id == spec.run_id
    assert record.finetune_examples == 64 and record.model_params > 0 and record.pretrain_tokens == 0
    assert record.steps == 8 and record.best_step in (4, 8)
    assert math.isfinite(record.test_loss) and set(record.test_losses) == {"test_a", "test_b"}
    assert {"bleu", "chrf"} <= set(record.metrics)
    assert (spec.run_dir / SPEC_FILE).is_file() and (spec.run_dir / "generations.jsonl").is_file()
    assert "ok, test loss" in capsys.readouterr().out


def test_a_finished_run_is_not_trained_again(recipe):
    spec = load_runs(recipe).runs[0]
    first = run_spec(spec)
    again = run_spec(spec)
    assert again == first


def test_non_finite_loss_records_a_failed_run(recipe, monkeypatch):
    import scaling_repro.train.loop as loop

    real = loop.token_nll_sum
    monkeypatch.setattr(loop, "token_nll_sum", lambda *args, **kwargs: real(*args, **kwargs) * float("nan"))
    spec = load_runs(recipe).runs[0]
    assert main(["run", str(recipe)]) == 1
    assert read_record(spec.run_dir).status == "failed: non-finite loss at step 1"


def test_evaluate_rescores_a_finished_run_with_new_eval_settings(recipe):
    spec = load_runs(recipe).runs[0]
    trained = run_spec(spec)
    updated = reevaluate(spec.run_dir, ["eval.metrics=[chrf]"])
    assert set(updated.metrics) == {"chrf"}
    assert updated.metrics["chrf"] == trained.metrics["chrf"]  # same checkpoint, same greedy outputs
    assert updated.test_loss == pytest.approx(trained.test_loss, abs=1e-6)
    assert updated.best_step == trained.best_step  # training fields kept


def test_evaluate_refuses_overrides_outside_eval(recipe, capsys):
    spec = load_runs(recipe).runs[0]
    run_spec(spec)
    assert main(["evaluate", str(spec.run_dir), "train.max_steps=3"]) == 2
    assert "only eval.*" in capsys.readouterr().err


def test_run_of_a_sweep_needs_an_index(recipe, capsys):
    assert main(["run", str(recipe), "sweep.grid.task.seed=[0, 1]"]) == 2
    assert "--index 0..1" in capsys.readouterr().err


def _pretrained_base(recipe, tokenizer_dir) -> list[str]:
    """Overrides that make the recipe's run finetune a saved tiny-xs checkpoint."""
    from scaling_repro.models.configs import build_config, build_model
    from scaling_repro.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(str(tokenizer_dir))
    torch.manual_seed(0)
    model = build_model(
        build_config(
            "tiny-xs",
            len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    base = recipe.parent / "base"
    model.save_pretrained(base)
    return [f"model.name={base}", "model.init=pretrained"]


@pytest.mark.parametrize("init", ["random", "pretrained"])  # pretrained: loaded partitioned (zero.Init)
def test_zero3_run_evaluates_the_same_model_as_a_plain_run(recipe, tokenizer_dir, init):
    pytest.importorskip("deepspeed", reason="DeepSpeed is the optional [deepspeed] extra")
    model = _pretrained_base(recipe, tokenizer_dir) if init == "pretrained" else []
    plain = run_spec(load_runs(recipe, model).runs[0])
    # train.deepspeed is not part of the run id: the ZeRO-3 run needs its own output directory.
    zero3 = [*model, "train.deepspeed=zero3", f"output_dir={recipe.parent / 'zero3'}"]
    # Its own process: DeepSpeed leaves a process group behind (as a sweep does it, too).
    proc = subprocess.run(
        [sys.executable, "-m", "scaling_repro", "run", str(recipe), *zero3],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ("model built partitioned over the ranks" in proc.stderr + proc.stdout) == (init == "pretrained")
    sharded = read_record(load_runs(recipe, zero3).runs[0].run_dir)
    assert sharded.ok and sharded.hardware["distributed_type"] == "DEEPSPEED"
    assert sharded.test_loss == pytest.approx(plain.test_loss, abs=1e-4)


@pytest.mark.slow
def test_evaluation_runs_in_the_training_precision_for_every_method(recipe, monkeypatch):
    """bf16 training (forced on the CPU here) is evaluated under bf16 autocast too, for FMT and
    for PET, whose decoder forward Accelerate never wrapped."""
    import scaling_repro.evaluate.generate as generate_module
    from scaling_repro.train import distributed

    monkeypatch.setattr(distributed, "mixed_precision", lambda precision: "bf16")
    seen = []
    real = generate_module.greedy_batch

    def recording(model, *args, **kwargs):
        seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(generate_module, "greedy_batch", recording)
    for kind, extra in [("full", []), ("lora", ["method.rank=2"]), ("prompt", ["method.prompt_length=4"])]:
        seen.clear()
        assert main(["run", str(recipe), f"method.kind={kind}", "train.max_steps=2", "train.eval_every=2", *extra]) == 0
        assert seen and set(seen) == {torch.bfloat16}, kind
