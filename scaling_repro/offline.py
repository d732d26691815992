"""Whether the environment forbids downloads: one reading of the offline flags for every stage.

A flag is on when its value is ``1``, ``true``, ``yes`` or ``on`` (any case, surrounding
spaces ignored), as huggingface-hub reads them; anything else, or unset, is off. A leaf:
imports nothing of this package.
"""

from __future__ import annotations

import os

TRUE_VALUES = ("1", "true", "yes", "on")


def env_flag(name: str) -> bool:
    """Return whether the environment variable ``name`` is set to 1/true/yes/on."""
    return os.environ.get(name, "").strip().lower() in TRUE_VALUES


def hub_offline() -> bool:
    """Return whether model and tokenizer downloads are off (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    return env_flag("HF_HUB_OFFLINE") or env_flag("TRANSFORMERS_OFFLINE")


def datasets_offline() -> bool:
    """Return whether dataset downloads are off (``HF_DATASETS_OFFLINE`` or ``HF_HUB_OFFLINE``)."""
    return env_flag("HF_DATASETS_OFFLINE") or env_flag("HF_HUB_OFFLINE")
