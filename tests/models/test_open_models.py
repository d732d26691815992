"""Open Hugging Face architectures end to end through `scaling-repro run`: FMT, LoRA and prompt
tuning on tiny random GPT-NeoX (Pythia), GPT-2, OPT, Llama and Qwen2 models, saved as a hub
revision lays them out (tokenizer at the root, weights in ``step1000/``), as safetensors or as
a ``pytorch_model.bin`` only; best-checkpoint reload, an interrupted and resumed run, and the
factors in the result record."""

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from scaling_repro.cli import main
from scaling_repro.config.sweep import load_runs
from scaling_repro.data.synthetic import pretraining_corpus
from scaling_repro.errors import UserError
from scaling_repro.models.configs import count_parameters
from scaling_repro.models.load import load_base_model
from scaling_repro.models.tokenizer import load_tokenizer, train_tokenizer
from scaling_repro.pipeline import run_spec
from scaling_repro.results import read_record
from scaling_repro.train import stop
from tests.helpers.models_testing import ARCHITECTURES
from tests.helpers.paths import REPO

STEP = 1000
METHODS = {"full": "", "lora": ", rank: 2", "prompt": ", prompt_length: 4"}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(pretraining_corpus(2000, parallel_share=0.3), 300, out)
    return out


def save_open_model(root, arch: str, tokenizer_dir, weights: str = "safetensors"):
    """Save a tiny random ``arch`` model as a hub revision ``root/step1000`` (``weights``:
    ``safetensors`` or ``bin``, keys as the hub files have them), the tokenizer at ``root``."""
    tokenizer = load_tokenizer(str(tokenizer_dir))
    ids = dict(
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    cls, config, _ = ARCHITECTURES[arch]
    torch.manual_seed(0)
    model = cls(config(len(tokenizer), ids))
    revision = root / f"step{STEP}"
    model.save_pretrained(revision)
    tokenizer.save_pretrained(root)
    if weights == "bin":
        state = load_file(revision / "model.safetensors")
        torch.save(state, revision / "pytorch_model.bin")
        (revision / "model.safetensors").unlink()
    return model


def write_recipe(path, model_dir, method: str, name: str) -> None:
    path.write_text(f"""
name: {name}
output_dir: {json.dumps(str(path.parent / "runs"))}
task: {{name: synthetic_mt, train_examples: 16, dev_examples: 8, test_examples: 8}}
model: {{name: {json.dumps(str(model_dir))}, revision: step{STEP}}}
method: {{kind: {method}, lr: 3.0e-3, batch_size: 8{METHODS[method]}}}
train: {{optimizer: adamw, max_steps: 4, eval_every: 2, threads: 1}}
eval: {{batch_size: 8, max_generate_examples: 2, max_new_tokens: 4}}
""")


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_method_runs_end_to_end_on_each_architecture(arch, tmp_path, tokenizer_dir):
    root = tmp_path / ("pythia-tiny" if arch == "gpt_neox" else f"{arch}-tiny")
    model = save_open_model(root, arch, tokenizer_dir)
    expected_params = count_parameters(model).non_embedding
    for method in METHODS:
        recipe = tmp_path / f"{method}.yaml"
        write_recipe(recipe, root, method, f"open-{arch}-{method}")
        assert main(["run", str(recipe)]) == 0
        record = read_record(load_runs(recipe).runs[0].run_dir)
        assert record.ok and record.best_step in (2, 4) and record.test_loss > 0
        assert record.model_params == expected_params and record.finetune_examples == 16
        assert record.pretrain_tokens == (STEP * 2_097_152 if arch == "gpt_neox" else None)
        assert record.pet_params == {"full": None, "lora": 2, "prompt": 4}[method]
        if method == "lora":
            assert record.adapted_modules == ARCHITECTURES[arch][2]


@pytest.mark.slow
@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_a_bin_only_revision_resumes_after_an_interruption_as_if_uninterrupted(arch, method, tmp_path, tokenizer_dir):
    root = tmp_path / f"{arch}-bin"
    save_open_model(root, arch, tokenizer_dir, weights="bin")
    (tmp_path / "once").mkdir()
    (tmp_path / "twice").mkdir()
    once, twice = tmp_path / "once" / "r.yaml", tmp_path / "twice" / "r.yaml"
    write_recipe(once, root, method, f"open-{method}")
    write_recipe(twice, root, method, f"open-{method}")
    uninterrupted = run_spec(load_runs(once).runs[0])
    spec = load_runs(twice).runs[0]
    asked = []  # the loop asks before every step: stop before step 3, after step 2's checkpoint
    with pytest.raises(stop.TrainingStopped), stop.stop_when(lambda: asked.append(1) or len(asked) > 2):
        run_spec(spec)
    assert not (spec.run_dir / "result.json").exists()
    resumed = run_spec(spec)
    assert resumed.ok and uninterrupted.ok
    assert resumed.test_loss == uninterrupted.test_loss and resumed.dev_loss == uninterrupted.dev_loss
    assert resumed.best_step == uninterrupted.best_step


def test_a_bin_holding_a_pickled_object_is_refused_naming_the_model(tmp_path, tokenizer_dir):
    root = tmp_path / "gpt_neox-evil"
    save_open_model(root, "gpt_neox", tokenizer_dir, weights="bin")
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bin_file = root / f"step{STEP}" / "pytorch_model.bin"
    state = torch.load(bin_file, weights_only=True)
    with open(bin_file, "wb") as handle:
        torch.save({**state, "evil": Evil()}, handle, pickle_module=pickle)
    from scaling_repro.config.recipe import ModelConfig

    with pytest.raises(UserError, match="gpt_neox-evil"):
        load_base_model(ModelConfig(name=str(root), revision=f"step{STEP}"))
    assert not marker.exists()


def hub_cache(hf_home, repo: str, revision: str):
    """Return the snapshot folder of ``repo`` at ``revision`` in a Hugging Face cache under
    ``hf_home``, laid out as the hub client leaves it (refs/<revision> names the commit)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    cache = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    (cache / "refs").mkdir(parents=True)
    (cache / "refs" / revision).write_text(commit)
    return cache / "snapshots" / commit


@pytest.mark.slow
def test_an_open_recipe_runs_on_a_local_mirror_of_pythia(tmp_path, tokenizer_dir):
    snapshot = hub_cache(tmp_path / "hf", "EleutherAI/pythia-160m", "step143000")
    model = save_open_model(tmp_path / "built", "gpt_neox", tokenizer_dir)
    model.save_pretrained(snapshot)
    load_tokenizer(str(tokenizer_dir)).save_pretrained(snapshot)
    recipe = "recipes/open/wmt14_en_de/model_size_lora.yaml"
    overrides = [
        "model.name=EleutherAI/pythia-160m",
        "task.name=synthetic_mt",
        "task.train_examples=8000",
        "task.seed=0",
        "task.dev_examples=8",
        "task.test_examples=8",
        "eval.zero_shot=false",
        "eval.few_shot=[]",
        "eval.metrics=[chrf]",
        "eval.max_generate_examples=2",
        "eval.max_new_tokens=4",
        "train.max_steps=2",
        "train.eval_every=1",
        "method.batch_size=16",
        f"output_dir={tmp_path / 'runs'}",
    ]
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "scaling_repro", "run", recipe, *overrides],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = read_record(next((tmp_path / "runs").glob("*/*/result.json")).parent)
    assert record.ok and record.model == "EleutherAI/pythia-160m"
    assert record.pretrain_tokens == 143_000 * 2_097_152 and record.pet_params == 4
    assert record.adapted_modules == ARCHITECTURES["gpt_neox"][2]


# Embedding parameters by hand, hidden size 32 and vocabulary V: token embeddings, learned
# position embeddings (GPT-2: 256 positions; OPT: 256 + its offset of 2) and an untied LM head.
EMBEDDING_PARAMS = {
    "gpt_neox": lambda v: 2 * v * 32,  # embed_in + embed_out (untied)
    "gpt2": lambda v: v * 32 + 256 * 32,  # wte (tied head) + wpe
    "opt": lambda v: v * 32 + 258 * 32,  # embed_tokens (tied head) + embed_positions
    "llama": lambda v: 2 * v * 32,  # embed_tokens + lm_head (untied)
    "qwen2": lambda v: 2 * v * 32,
}


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_non_embedding_parameters_leave_out_embeddings_and_count_a_tied_head_once(arch, tmp_path, tokenizer_dir):
    model = save_open_model(tmp_path / arch, arch, tokenizer_dir)
    vocab = model.get_input_embeddings().num_embeddings
    counts = count_parameters(model)
    assert counts.embedding == EMBEDDING_PARAMS[arch](vocab)
    assert counts.non_embedding == sum(p.numel() for p in model.parameters()) - counts.embedding
