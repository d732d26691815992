"""BLEURT scores in float32, outside the training precision's autocast that decoding runs in."""

from __future__ import annotations

import torch

import scaling_repro.evaluate.bleurt as bleurt
from scaling_repro.config.recipe import EvalConfig
from scaling_repro.evaluate.run import evaluate_model
from tests.evaluate.test_run import TASK, WORDS
from tests.evaluate.test_run import model as model  # noqa: F401  (fixtures)
from tests.evaluate.test_run import tokenizer as tokenizer  # noqa: F401


def linear_output_dtypes(module: torch.nn.Module, seen: list[torch.dtype]) -> None:
    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear):
            layer.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))


def test_bleurt_runs_in_float32_while_decoding_runs_in_bfloat16(model, tokenizer, tmp_path, monkeypatch):
    from tests.helpers.bleurt_checkpoint import CORPUS, train_spm, write_checkpoint

    write_checkpoint(tmp_path / "bleurt", train_spm(tmp_path / "spm", CORPUS + WORDS, vocab_size=200))
    bleurt_outputs: list[torch.dtype] = []
    decoder_outputs: list[torch.dtype] = []
    load = bleurt.load_bleurt

    def load_watched(*args, **kwargs):
        scorer = load(*args, **kwargs)
        linear_output_dtypes(scorer.model, bleurt_outputs)
        return scorer

    monkeypatch.setattr(bleurt, "load_bleurt", load_watched)
    handles = [m.register_forward_hook(lambda mod, a, out: decoder_outputs.append(out.dtype)) for m in [model.lm_head]]
    try:
        cfg = EvalConfig(max_new_tokens=2, metrics=["bleurt"], bleurt_checkpoint=str(tmp_path / "bleurt"))
        evaluate_model(model, tokenizer, TASK, cfg, compute_loss=False, autocast_dtype=torch.bfloat16)
    finally:
        for handle in handles:
            handle.remove()
    assert decoder_outputs and set(decoder_outputs) == {torch.bfloat16}
    assert bleurt_outputs and set(bleurt_outputs) == {torch.float32}
