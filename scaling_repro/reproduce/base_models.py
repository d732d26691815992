"""The base-models stage for the hub models of a plan: every (model, revision) the runs use is
made available before any run starts, and the real tokens per training example are measured.

- a stand-in (``hub_models[].stand_in``) is built at its directory in the study folder if missing;
- a directory (absolute, or relative to the study folder) must hold each revision's subfolder;
- a hub id is fetched into the Hugging Face cache (``snapshot_download``: the config, tokenizer
  and weights (safetensors, or Pythia's ``pytorch_model.bin``); with ``HF_HUB_OFFLINE=1`` the cache
  must already hold them).

The measurement encodes a sample of the task's training examples with the first model's
tokenizer exactly as the trainer does (:func:`scaling_repro.data.collate.encode_examples`) and
writes ``tokens_per_example.json`` in the study folder; the plan's GPU-hour estimate uses it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from scaling_repro.config.recipe import RunSpec
from scaling_repro.config.study_plan import HubModelPlan, StudyPlan
from scaling_repro.errors import UserError
from scaling_repro.fileio import atomic_write_json
from scaling_repro.reproduce.stages import StageResult, in_study

TOKENS_FILE = "tokens_per_example.json"
SAMPLE_EXAMPLES = 1000
HUB_FILES = ["*.json", "*.safetensors", "pytorch_model*.bin", "*.txt", "*.model"]


def local_directory(name: str, out_dir: Path) -> Path | None:
    """Return the directory a model name means in the study folder, or None for a hub id."""
    path = Path(name).expanduser()
    path = path if path.is_absolute() else out_dir / path
    if path.exists() or name.startswith(("/", "./", "../", "~")) or name.count("/") > 1:
        return path
    return None


def _fetch(model: HubModelPlan, revision: str) -> None:
    """Fetch one hub revision into the cache (or find it there offline); raise UserError."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(model.name, revision=revision, allow_patterns=HUB_FILES))
    except Exception as err:  # offline without a cache entry, unknown revision, no network
        raise UserError(
            f"base model {model.name}@{revision}: cannot fetch it ({type(err).__name__}: {str(err)[:200]}); "
            "offline, fill the Hugging Face cache where the hub is reachable or use local directories "
            "(docs/pythia.md, 'Offline mirrors')"
        ) from None
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("pytorch_model*.bin")):
        raise UserError(f"base model {model.name}@{revision}: the hub revision holds no weights ({folder})")


def _check_local(model: HubModelPlan, root: Path) -> None:
    from scaling_repro.models.load import resolve_local_checkpoint

    for revision in model.revisions:
        resolve_local_checkpoint(root, revision, field=f"hub_models {model.name}")


def prepare_hub_models(plan: StudyPlan, specs: list[tuple[RunSpec, Path]], out_dir: Path) -> StageResult:
    """Make every hub model revision of the plan available (see the module docstring) and
    measure the tokens per example if not measured; return the StageResult."""
    from scaling_repro.reproduce.stand_ins import write_stand_in_model

    started = time.perf_counter()
    built, local, fetched = 0, 0, 0
    for model in plan.hub_models:
        root = local_directory(model.name, out_dir)
        if model.stand_in is not None:  # always a directory, relative to the study folder unless absolute
            root = out_dir / Path(model.name).expanduser()
            built += write_stand_in_model(root, model.revisions, model.stand_in)
        if root is not None:
            _check_local(model, root)
            local += 1
            continue
        # Pythia's stepN revisions hold pytorch_model.bin: without this, every online load starts a
        # conversion to safetensors that opens a pull request on the hub (no effect on results)
        os.environ.setdefault("DISABLE_SAFETENSORS_CONVERSION", "1")
        for revision in model.revisions:
            _fetch(model, revision)
            fetched += 1
    measured = measure_tokens_per_example(specs, out_dir)
    parts = [f"{len(plan.hub_models)} hub models"]
    parts += [f"{built} stand-ins built"] * bool(built) + [f"{local} local directories"] * bool(local)
    parts += [f"{fetched} revisions in the hub cache"] * bool(fetched)
    parts.append(f"{measured:.1f} real tokens per training example ({TOKENS_FILE})")
    return StageResult("models", time.perf_counter() - started, ", ".join(parts), bool(built))


def measured_tokens_per_example(out_dir: Path) -> float | None:
    """Return the tokens per example the base-models stage measured in ``out_dir``, or None."""
    try:
        return float(json.loads((out_dir / TOKENS_FILE).read_text(encoding="utf-8"))["tokens_per_example"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def measure_tokens_per_example(specs: list[tuple[RunSpec, Path]], out_dir: Path) -> float:
    """Return the mean real tokens of a training example of the first run's task and model
    (measured once: read back from ``tokens_per_example.json`` afterwards)."""
    known = measured_tokens_per_example(out_dir)
    if known is not None:
        return known
    from scaling_repro.data.collate import encode_examples, token_counts
    from scaling_repro.data.tasks import load_task
    from scaling_repro.models.tokenizer import load_tokenizer

    spec = specs[0][0]
    task_cfg = in_study(spec.task, out_dir).model_copy(update={"seed": 0, "train_examples": SAMPLE_EXAMPLES})
    try:
        task = load_task(task_cfg)
    except UserError:  # a pool smaller than the sample: all of it
        task = load_task(task_cfg.model_copy(update={"train_examples": None}))
    root = local_directory(spec.model.tokenizer or spec.model.name, out_dir)
    if root is not None:
        tokenizer = load_tokenizer(str(root))
    else:
        tokenizer = load_tokenizer(spec.model.tokenizer or spec.model.name, revision=spec.model.revision)
    encoded = encode_examples(
        tokenizer, task.train, task.info, spec.task.max_source_tokens, spec.task.max_target_tokens, log_counts=False
    )
    counts = token_counts(encoded)
    value = counts["total_tokens"] / max(1, counts["examples"])
    atomic_write_json(
        out_dir / TOKENS_FILE,
        {"tokens_per_example": value, "examples": counts["examples"], "task": spec.task.name, "model": spec.model.name},
    )
    return value
