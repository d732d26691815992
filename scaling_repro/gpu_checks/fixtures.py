"""What the pipeline-path checks run on: the paper recipes' own settings, a word-level
tokenizer of any vocabulary size, and a ``local`` task of synthetic text with a task's
length spread (:mod:`scaling_repro.gpu_checks.lengths`), all written to a scratch folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scaling_repro.config.recipe import RunSpec
from scaling_repro.gpu_checks.lengths import BOS_ID, EOS_ID, FIRST_WORD_ID, PAD_ID, LengthLaw, text_pairs

REPO = Path(__file__).resolve().parents[2]
RECIPES = {
    "wmt_fmt": "recipes/paper/wmt14_en_de/model_size_fmt.yaml",
    "mlsum_fmt": "recipes/paper/mlsum/model_size_fmt.yaml",
    "wmt_lora": "recipes/paper/wmt14_en_de/pretrain_data_lora.yaml",
    "wmt_prompt": "recipes/paper/wmt14_en_de/pretrain_data_prompt.yaml",
}


def recipe_run(key: str, model_name: str = "paper-1b") -> RunSpec:
    """Return the first run of the paper recipe ``RECIPES[key]`` on config ``model_name``."""
    from scaling_repro.config.sweep import load_runs

    runs = load_runs(REPO / RECIPES[key]).runs
    for spec in runs:
        if spec.model.name == model_name:
            return spec
    raise ValueError(
        f"{RECIPES[key]} has no run of model {model_name!r}; it has {sorted({r.model.name for r in runs})}"
    )


def per_gpu_batch(spec: RunSpec) -> int:
    """Return one GPU's share of the recipe's global batch (what one GPU of its launch trains
    per step): ``method.batch_size`` over ``launch.gpus_per_node x launch.nodes``."""
    gpus = spec.launch.gpus_per_node * spec.launch.nodes
    return max(1, spec.method.batch_size // gpus)


def write_tokenizer(folder: Path, vocab: int) -> Path:
    """Write a word-level fast tokenizer of ``vocab`` ids (``<pad> <s> </s> <unk> w4 w5 ...``)
    to ``folder`` and return it: every word ``w<id>`` is one token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": PAD_ID, "<s>": BOS_ID, "</s>": EOS_ID, "<unk>": 3}
    words.update({f"w{i}": i for i in range(FIRST_WORD_ID, vocab)})
    core = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    return folder


def write_pairs(path: Path, pairs: list[tuple[str, str]]) -> str:
    """Write (source, target) pairs as jsonl to ``path`` and return the path as text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"source": s, "target": t}) + "\n" for s, t in pairs), encoding="utf-8")
    return str(path)


def local_task(folder: Path, law: LengthLaw, vocab: int, train: int, dev: int, test: int) -> dict[str, Any]:
    """Write a ``local`` task with ``law``'s lengths to ``folder``; return its recipe section."""
    return {
        "name": "local",
        "files": {
            "train": write_pairs(folder / "train.jsonl", text_pairs(law, train, vocab, seed=0)),
            "dev": write_pairs(folder / "dev.jsonl", text_pairs(law, dev, vocab, seed=1)),
            "test": {"test": write_pairs(folder / "test.jsonl", text_pairs(law, test, vocab, seed=2))},
        },
        "max_source_tokens": law.max_source_tokens,
        "max_target_tokens": law.max_target_tokens,
        "params": {"metrics": ["bleu"]},
    }


def check_spec(
    recipe: RunSpec,
    output_dir: Path,
    task: dict[str, Any],
    model: dict[str, Any],
    train: dict[str, Any],
    eval_: dict[str, Any],
    method: dict[str, Any] | None = None,
) -> RunSpec:
    """Return ``recipe`` with its task, model, output folder and some train, eval (and method)
    settings replaced; everything else (method kind, optimizer, precision, DeepSpeed,
    micro-batch) as the recipe has it."""
    data = recipe.model_dump(mode="json")
    data.update(name="gpu-check", output_dir=str(output_dir), task=task, model=model)
    data["train"].update(train)
    data["eval"].update(eval_)
    data["method"].update(method or {})
    return RunSpec.model_validate(data)


def without_deepspeed_unless_available(train: dict[str, Any], recipe: RunSpec, notes: dict[str, Any]) -> None:
    """Set ``train["deepspeed"]`` to the recipe's, or drop it (noted in ``notes``) where
    DeepSpeed cannot be imported."""
    from scaling_repro.train.distributed import deepspeed_available

    wanted = recipe.train.deepspeed
    ok, reason = deepspeed_available()
    if wanted and not ok:
        train["deepspeed"] = None
        notes["note"] = f"the recipe uses {wanted}, run without DeepSpeed: {reason}"
    else:
        train["deepspeed"] = wanted
    notes["deepspeed"] = train["deepspeed"] or "none"
