"""FMT under DeepSpeed ZeRO-2 saves the best weights of a model with tied embeddings once each
(Accelerate's state dict unties them, which doubled the LM head and failed the size check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from scaling_repro.train.distributed import deepspeed_available
from tests.helpers.paths import pythonpath

DEEPSPEED, DEEPSPEED_REASON = deepspeed_available()

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import torch
    from tests.helpers.train_helpers import collate, copy_task, tiny_llama, train_config
    from scaling_repro.train.checkpoint import saved_numel
    from scaling_repro.train.loop import train

    out = Path(sys.argv[1])
    model = tiny_llama()
    config = train_config(max_steps=2, eval_every=2, log_every=1, micro_batch_size=2, optimizer="adamw",
                          deepspeed="zero2")
    result = train(model, copy_task(16, seed=0), copy_task(4, seed=1), collate, out / "run", config=config,
                   lr=1e-2, batch_size=4, seed=0)
    fresh = tiny_llama(seed=1)
    result.load_best(fresh)
    trained = dict(model.named_parameters())
    (out / "got.json").write_text(json.dumps({
        "tied": fresh.lm_head.weight is fresh.model.embed_tokens.weight,
        "numel": saved_numel(result.best_checkpoint),
        "unique": sum(p.numel() for p in fresh.parameters()),
        "max_diff": max((p - trained[n].detach()).abs().max().item() for n, p in fresh.named_parameters()),
    }))
""")


@pytest.mark.skipif(not DEEPSPEED, reason=f"DeepSpeed ZeRO test needs deepspeed: {DEEPSPEED_REASON}")
def test_zero2_full_model_best_weights_keep_tied_embeddings_tied(tmp_path):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": pythonpath(),
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "got.json").read_text())
    assert got["tied"] and got["numel"] == got["unique"]
    assert got["max_diff"] == 0.0  # the saved weights are the trained ones (fp32 on CPU)
