"""The best weights are loaded for evaluation in the training precision, one copy of the model:
into the trained model's own parameters, or, after DeepSpeed, straight from the checkpoint."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import scaling_repro.pipeline as pipeline
from scaling_repro.config.recipe import ModelConfig
from scaling_repro.methods import MethodModel
from scaling_repro.models.load import LoadedModel
from scaling_repro.train.checkpoint import BEST_FILE, load_best_weights


def tiny(seed: int, dtype: torch.dtype = torch.float32) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        intermediate_size=64,
        vocab_size=50,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).to(dtype)


@pytest.fixture
def best(tmp_path):
    """A best checkpoint as ``save_best`` writes it (float32 weights, tied head not saved)."""
    directory = tmp_path / "best-00000010"
    model = tiny(seed=1)
    model.save_pretrained(str(directory), safe_serialization=True)
    (directory / BEST_FILE).write_text('{"step": 10, "dev_loss": 1.0}')
    return directory, {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture
def count_models(monkeypatch):
    """How many Llama models get built (each one a full set of parameters)."""
    built = []
    init = LlamaForCausalLM.__init__

    def counted(self, *args, **kwargs):
        built.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(LlamaForCausalLM, "__init__", counted)
    return built


def test_best_weights_are_copied_into_the_models_own_parameters_in_its_dtype(best, count_models):
    directory, saved = best
    model = tiny(seed=2, dtype=torch.bfloat16)
    count_models.clear()
    before = {name: param for name, param in model.named_parameters()}
    load_best_weights(model, directory)
    assert count_models == []  # no second model
    assert {name: param for name, param in model.named_parameters()} == before  # the same tensors, refilled
    for name, tensor in model.state_dict().items():
        assert tensor.dtype == torch.bfloat16
        assert torch.equal(tensor, saved[name].to(torch.bfloat16)), name
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied


def deepspeed_run(model: torch.nn.Module, kind: str = "full") -> SimpleNamespace:
    spec = SimpleNamespace(
        train=SimpleNamespace(deepspeed="zero3.json"),
        method=SimpleNamespace(kind=kind),
        model=ModelConfig(name="tiny-llama"),
    )
    base = LoadedModel(model, None, 1, "non_embedding", None, "test")  # type: ignore[arg-type]
    method = MethodModel(model, kind, 1, 1, None)  # type: ignore[arg-type]
    return SimpleNamespace(spec=spec, model=model, base=base, method=method)


def test_after_deepspeed_a_full_model_is_read_once_from_its_best_checkpoint_in_the_training_dtype(
    best, count_models, monkeypatch
):
    directory, saved = best
    trained = tiny(seed=3, dtype=torch.bfloat16)  # DeepSpeed bf16 holds the module in bfloat16
    run = deepspeed_run(trained)
    del trained
    monkeypatch.setattr(pipeline, "load_model", lambda *a, **k: pytest.fail("the base model was loaded again"))
    count_models.clear()
    pipeline.evaluation_weights(run, directory)
    assert len(count_models) == 1 and count_models[0] is run.model
    assert run.base.model is run.method.model is run.model
    assert {p.dtype for p in run.model.parameters()} == {torch.bfloat16}
    assert torch.equal(run.model.model.embed_tokens.weight, saved["model.embed_tokens.weight"].bfloat16())


def test_without_deepspeed_the_trained_model_is_kept_and_refilled(best, count_models):
    directory, saved = best
    trained = tiny(seed=3)
    run = deepspeed_run(trained)
    run.spec.train.deepspeed = None
    count_models.clear()
    pipeline.evaluation_weights(run, directory)
    assert count_models == [] and run.model is trained
    assert torch.equal(trained.model.norm.weight, saved["model.norm.weight"])
