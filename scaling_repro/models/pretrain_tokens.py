"""The pretraining-data factor of a base model: how many tokens it was pretrained on, from the
recipe, the checkpoint's metadata, or a published rule (Pythia: ``stepN`` x 2,097,152); never
guessed."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from scaling_repro.errors import UserError

if TYPE_CHECKING:
    from scaling_repro.config.recipe import ModelConfig

log = logging.getLogger(__name__)

META_FILE = "scaling_repro_meta.json"
PYTHIA_TOKENS_PER_STEP = 2_097_152
PYTHIA_FINAL_STEP = 143_000
Known = tuple[int, str] | None  # pretrain tokens and where they come from


def pythia_pretrain_tokens(name: str, revision: str | None, model_type: str | None = "gpt_neox") -> int | None:
    """Tokens a Pythia checkpoint saw: ``stepN`` x 2,097,152 (no revision / ``main`` = step
    143000). None when ``name`` is not Pythia (hub ``EleutherAI/pythia-*``, or a local
    GPT-NeoX directory named ``pythia-*``) or the revision is not ``stepN``."""
    hub = re.fullmatch(r"EleutherAI/pythia-[^/]+", name, flags=re.IGNORECASE)
    local = model_type == "gpt_neox" and Path(name).name.lower().startswith("pythia-")
    if not (hub or local):
        return None
    if revision in (None, "main"):
        return PYTHIA_FINAL_STEP * PYTHIA_TOKENS_PER_STEP
    step = re.fullmatch(r"step(\d+)", revision)
    return int(step.group(1)) * PYTHIA_TOKENS_PER_STEP if step else None


def random_tokens(cfg: ModelConfig) -> Known:
    """Return 0 tokens (random init); UserError when the recipe claims pretraining tokens."""
    if cfg.pretrain_tokens:
        raise UserError(f"model.pretrain_tokens {cfg.pretrain_tokens} contradicts model.init 'random' (0 tokens)")
    return 0, "random init"


def pythia_rule(cfg: ModelConfig, model) -> Known:
    """Return the tokens of a Pythia checkpoint by the published rule, or None."""
    tokens = pythia_pretrain_tokens(cfg.name, cfg.revision, getattr(model.config, "model_type", None))
    return None if tokens is None else (tokens, f"the Pythia rule (step x {PYTHIA_TOKENS_PER_STEP:,})")


def resolve_pretrain_tokens(cfg: ModelConfig, known: Known, source: str) -> int | None:
    """The recipe's value, else the known one (metadata or rule); None, with a warning, otherwise."""
    if cfg.pretrain_tokens is not None:
        if known is not None and known[0] != cfg.pretrain_tokens:
            log.warning("model.pretrain_tokens=%d overrides %d from %s for %s", cfg.pretrain_tokens, *known, source)
        return cfg.pretrain_tokens
    if known is None:
        log.warning(
            "pretrain_tokens of %s is unknown (no %s, no known rule): the record will have none; "
            "set model.pretrain_tokens in the recipe",
            source,
            META_FILE,
        )
        return None
    log.info("pretrain_tokens of %s = %d from %s", source, *known)
    return known[0]
