"""What made a study's pretrained files, recorded beside them and checked on every later run.

The data stage records the corpus and tokenizer settings in ``pretrained/tokenizer/``, the
pretraining stage the whole resolved pretraining recipe in ``pretrained/<model>/``. When the
plan's pretraining recipe has changed since, continuing the study would reuse the old tokenizer
or base models, and every finetuning run on them (run ids name a base model by path and
revision, not by its weights), so it stops with an error naming the settings that changed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from scaling_repro.config.recipe import EXECUTION_ONLY, RUNTIME_SETTINGS
from scaling_repro.errors import UserError
from scaling_repro.fileio import atomic_write_json
from scaling_repro.pretrain.recipe import PretrainRecipe

log = logging.getLogger(__name__)

RECORD_FILE = "study_recipe.json"
"""In ``pretrained/tokenizer/`` and each ``pretrained/<model>/``: the settings that made them."""

_NOT_IN_WEIGHTS = {"name", "description", "output_dir", "models"}
_TRAIN_NOT_IN_WEIGHTS = {*RUNTIME_SETTINGS["train"], *EXECUTION_ONLY, "log_every", "trackers"}


def tokenizer_settings(recipe: PretrainRecipe) -> dict[str, Any]:
    """Return the settings the study's tokenizer depends on: the corpus and the tokenizer spec."""
    data = recipe.model_dump(mode="json", include={"corpus", "tokenizer"})
    data["tokenizer"].pop("path", None)
    return data


def model_settings(recipe: PretrainRecipe) -> dict[str, Any]:
    """Return the settings one base model's weights depend on: the resolved pretraining recipe
    of that model without its name, output place and execution-only train settings."""
    data = recipe.model_dump(mode="json", exclude=_NOT_IN_WEIGHTS)
    data["tokenizer"].pop("path", None)
    for key in _TRAIN_NOT_IN_WEIGHTS:
        data["train"].pop(key, None)
    return data


def record_settings(directory: str | Path, settings: dict[str, Any]) -> Path:
    """Write ``settings`` to ``directory/study_recipe.json`` atomically; return the path."""
    path = Path(directory) / RECORD_FILE
    atomic_write_json(path, settings)
    return path


def check_settings(directory: str | Path, settings: dict[str, Any], what: str) -> None:
    """Raise UserError when ``directory`` was made with other ``settings`` than these, naming
    the settings that differ; a directory without a record (made by an older version) passes
    with a warning."""
    path = Path(directory) / RECORD_FILE
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        log.warning(
            "%s has no %s (made by an older version): assumed to match the plan's pretraining recipe",
            directory,
            RECORD_FILE,
        )
        return
    except ValueError as err:
        raise UserError(f"{path} is damaged ({err}); use a new --out or delete {directory}") from None
    changed = differences(recorded, settings)
    if changed:
        shown = "; ".join(changed[:6]) + (f"; and {len(changed) - 6} more" if len(changed) > 6 else "")
        raise UserError(
            f"{what} in {directory} was made with another pretraining recipe than the plan's ({shown}); "
            "the study's base models and finetuning runs would be stale: use a new --out, or delete "
            "pretrained/ and runs/ in this one to start over"
        )


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Return 'key: old -> new' for every dotted key whose value differs between two nested dicts."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "(unset)"), new.get(key, "(unset)")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {_short(a)} -> {_short(b)}")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
