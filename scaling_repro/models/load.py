"""Load the base LLM of a run from its recipe ``model`` section.

``model.name`` is one of three things:

1. a config name (``scaling-repro models``) with ``model.path``: our pretrained weights, a
   directory written by ``save_pretrained`` plus :data:`META_FILE` (see :class:`CheckpointMeta`);
2. a config name with ``model.init: random``: fresh weights (seeded), vocabulary size from the
   tokenizer (the ``tokenizer`` argument or ``model.tokenizer``);
3. anything else: a Hugging Face causal-LM hub id or a local directory, loaded with
   ``AutoModelForCausalLM`` / ``AutoTokenizer``: safetensors, or a ``pytorch_model.bin`` read
   with ``weights_only`` (tensors only; a pickle that would run code is refused);
   ``trust_remote_code`` only when the recipe sets it.

Revisions of local directories. For a hub id ``model.revision`` is a hub branch/tag/commit
(e.g. Pythia's ``step143000``). For a local directory (and for ``model.path``) it is the
subfolder ``<dir>/<revision>/``. Transformers itself silently ignores ``revision`` for local
directories, so this convention is applied here, explicitly, with an error when the
subfolder is missing. A local mirror of hub revisions is therefore
``hf download ID --revision R --local-dir DIR/R`` per revision, then ``model.name: DIR``.
Tokenizer files are looked for in ``<dir>/<revision>/``, then in ``<dir>/``.

``pretrain_tokens`` (the pretraining-data factor) is, in order: ``model.pretrain_tokens`` of
the recipe; the checkpoint's :data:`META_FILE`; for Pythia (hub ids ``EleutherAI/pythia-*``,
or a local GPT-NeoX directory named ``pythia-*``) the published rule: revision ``stepN`` saw
N x 2,097,152 tokens (1024 sequences of 2048 tokens per step; no revision or ``main`` is
step 143000). Otherwise it is None, with a warning: never guessed. Random init has 0.

``model_params`` is counted from the loaded model, non-embedding (see
:mod:`scaling_repro.models.configs`). ``model.dtype: auto`` means float32 weights (the
trainer's ``train.precision`` sets mixed precision); set ``bfloat16`` to halve memory.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scaling_repro.errors import UserError
from scaling_repro.fileio import atomic_write_text
from scaling_repro.models.configs import (
    MODEL_PARAMS_COUNTED,
    ParamsCounted,
    build_config,
    build_model,
    count_parameters,
    get_architecture,
    is_config_name,
)
from scaling_repro.models.placement import AS_RECIPE, Placement, device_map, placed
from scaling_repro.models.pretrain_tokens import (
    META_FILE,
    Known,
    pythia_rule,
    random_tokens,
    resolve_pretrain_tokens,
)
from scaling_repro.offline import hub_offline

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from scaling_repro.config.recipe import ModelConfig

log = logging.getLogger(__name__)

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


class CheckpointMeta(BaseModel):
    """What our pretraining writes beside the weights, in ``<checkpoint>/scaling_repro_meta.json``.

    ``tokenizer`` is a path, relative to the checkpoint directory or absolute, used when the
    checkpoint directory holds no tokenizer files itself. Extra keys are kept.
    """

    model_config = ConfigDict(extra="allow")

    config_name: str | None = Field(None, description="the config name the weights were built from")
    pretrain_tokens: int = Field(ge=0, description="tokens seen in pretraining up to this checkpoint")
    step: int | None = Field(None, ge=0)
    tokenizer: str | None = None


def write_checkpoint_meta(checkpoint_dir: str | os.PathLike, meta: CheckpointMeta) -> Path:
    """Write ``meta`` atomically to ``checkpoint_dir/scaling_repro_meta.json``; return the path."""
    path = Path(checkpoint_dir) / META_FILE
    atomic_write_text(path, meta.model_dump_json(indent=2, exclude_none=True) + "\n")
    return path


def read_checkpoint_meta(checkpoint_dir: str | os.PathLike) -> CheckpointMeta | None:
    """Return the :class:`CheckpointMeta` of ``checkpoint_dir``, or None when it has none."""
    path = Path(checkpoint_dir) / META_FILE
    if not path.is_file():
        return None
    try:
        return CheckpointMeta.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or "file"
        raise UserError(f"{path}: not valid checkpoint metadata: {where}: {first['msg']}") from err


@dataclass
class LoadedModel:
    """A base model ready for a method: ``model_params`` counted from ``model`` as
    ``model_params_counted``; ``pretrain_tokens`` None when unknown; ``source`` says what
    was loaded (e.g. ``hub:EleutherAI/pythia-160m@step1000``)."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    model_params: int
    model_params_counted: ParamsCounted
    pretrain_tokens: int | None
    source: str


def load_base_model(
    cfg: ModelConfig,
    tokenizer: PreTrainedTokenizerBase | None = None,
    *,
    seed: int = 0,
    placement: Placement = AS_RECIPE,
) -> LoadedModel:
    """Return the base model and tokenizer that recipe section ``cfg`` names (see the module
    docstring); ``tokenizer``, when given, is used instead of loading one; ``seed`` seeds
    random initialization; ``placement`` overrides the device and dtype (random weights are
    drawn as without it, then moved and cast)."""
    if is_config_name(cfg.name):
        model, tokenizer, source, known = _load_config_name(cfg, tokenizer, seed, placement)
    else:
        model, tokenizer, source, known = _load_hf(cfg, tokenizer, seed, placement)
    _check_vocab(model, tokenizer, source)
    pretrain_tokens = resolve_pretrain_tokens(cfg, known, source)
    counts = count_parameters(model)
    loaded = LoadedModel(
        model=model,
        tokenizer=tokenizer,
        model_params=counts.counted(MODEL_PARAMS_COUNTED),
        model_params_counted=MODEL_PARAMS_COUNTED,
        pretrain_tokens=pretrain_tokens,
        source=source,
    )
    log.info(
        "loaded %s: %s %s parameters (%s total), pretrain_tokens=%s",
        source,
        f"{loaded.model_params:,}",
        MODEL_PARAMS_COUNTED,
        f"{counts.total:,}",
        pretrain_tokens,
    )
    return loaded


# --- the three kinds of source ------------------------------------------------------------


def load_saved_model(directory: str | os.PathLike, cfg: ModelConfig, placement: Placement = AS_RECIPE):
    """Return the causal LM that ``save_pretrained`` wrote to ``directory`` (a full model's best
    weights), read straight onto ``placement``'s device in its dtype: one copy."""
    return _from_pretrained(str(directory), None, cfg, hub=False, placement=placement)


def _load_config_name(cfg: ModelConfig, tokenizer, seed: int, placement: Placement):
    """A config name: (model, tokenizer, source, known pretrain tokens with their origin)."""
    if cfg.init == "pretrained":
        if not cfg.path:
            raise UserError(
                f"model.name {cfg.name!r} is a config name: set model.path to its pretrained weights "
                "(`scaling-repro pretrain` writes them) or model.init: random"
            )
        ckpt = resolve_local_checkpoint(cfg.path, cfg.revision, field="model.path")
        meta = read_checkpoint_meta(ckpt)
        _check_checkpoint_is(cfg.name, ckpt, meta)
        model = _from_pretrained(str(ckpt), None, cfg, hub=False, placement=placement)
        tokenizer = tokenizer or _local_tokenizer(cfg, ckpt, Path(cfg.path), meta)
        return model, tokenizer, f"checkpoint:{ckpt}", _meta_tokens(meta)
    if cfg.path:
        raise UserError(f"model.path {cfg.path!r} is set but model.init is 'random': drop one")
    if tokenizer is None:
        if not cfg.tokenizer:
            raise UserError(
                f"model.init 'random' for config {cfg.name!r} needs a tokenizer for its vocabulary size: "
                "set model.tokenizer to a tokenizer directory or hub id"
            )
        tokenizer = _load_tokenizer(cfg.tokenizer, None, cfg.trust_remote_code)
    config = build_config(
        cfg.name,
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = placed(_seeded_build(config, cfg, seed), placement)
    return model, tokenizer, f"random:{cfg.name}(seed={seed})", random_tokens(cfg)


def _load_hf(cfg: ModelConfig, tokenizer, seed: int, placement: Placement):
    """A hub id or a local directory: (model, tokenizer, source, known pretrain tokens)."""
    local = _local_path(cfg.name)
    meta = None
    if local is not None:
        ckpt = resolve_local_checkpoint(local, cfg.revision, field="model.name")
        meta = read_checkpoint_meta(ckpt)
        target, revision, source = str(ckpt), None, f"local:{ckpt}"
    else:
        target, revision = cfg.name, cfg.revision
        source = f"hub:{cfg.name}" + (f"@{cfg.revision}" if cfg.revision else "")
    if cfg.init == "random":
        config = _hf_call(lambda: _auto_config(target, revision, cfg), cfg, hub=local is None)
        model = placed(_seeded_build(config, cfg, seed), placement)
        source, known = f"random:{source}(seed={seed})", random_tokens(cfg)
    else:
        model = _from_pretrained(target, revision, cfg, hub=local is None, placement=placement)
        known = _meta_tokens(meta) or pythia_rule(cfg, model)
    if tokenizer is None and local is not None:
        tokenizer = _local_tokenizer(cfg, ckpt, local, meta)
    elif tokenizer is None:
        name, rev = (cfg.tokenizer, None) if cfg.tokenizer else (cfg.name, cfg.revision)
        tokenizer = _load_tokenizer(name, rev, cfg.trust_remote_code)
    return model, tokenizer, source, known


def _local_path(name: str) -> Path | None:
    """``name`` as a local directory, or None when it is a hub id."""
    path = Path(name).expanduser()
    if path.exists():
        return path
    if name.startswith(("/", "./", "../", "~")) or name.count("/") > 1:
        raise UserError(f"model.name {name!r}: no such directory (nor a config name or hub id)")
    return None


def resolve_local_checkpoint(path: str | os.PathLike, revision: str | None, field: str = "model.name") -> Path:
    """Return the directory holding ``config.json``: ``path/revision`` when ``revision`` is set,
    else ``path``; raise ``UserError`` naming the available revisions when it is not there."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"{field} {str(path)!r}: directory does not exist")
    revisions = sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())
    target = root / revision if revision else root
    if (target / "config.json").is_file():
        return target
    if revision:
        raise UserError(
            f"model.revision {revision!r}: {target} has no config.json (a local directory's revision is "
            f"its subfolder); available: {', '.join(revisions) or 'none'}"
        )
    hint = f"; set model.revision to one of: {', '.join(revisions)}" if revisions else ""
    raise UserError(f"{field} {str(path)!r}: no config.json in {root}{hint}")


def _check_checkpoint_is(name: str, ckpt: Path, meta: CheckpointMeta | None) -> None:
    """Refuse weights of a different config than the recipe names (the record would lie)."""
    if meta is not None and meta.config_name and meta.config_name != name:
        raise UserError(
            f"model.path {str(ckpt)!r} holds config {meta.config_name!r} (per {META_FILE}) but model.name is {name!r}"
        )
    from transformers import AutoConfig

    found = AutoConfig.from_pretrained(str(ckpt))
    arch = get_architecture(name)
    expected = (arch.model_dim, arch.layers, arch.heads, arch.kv_heads, arch.ffn_dim)
    got = tuple(
        getattr(found, key, None)
        for key in (
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "intermediate_size",
        )
    )
    if got != expected:
        raise UserError(
            f"model.path {str(ckpt)!r}: its shape (d, layers, heads, kv heads, ffn) = {got} is not "
            f"config {name!r}'s {expected}"
        )


# --- Hugging Face calls with errors a user can act on ---------------------------------------


def _torch_dtype(cfg: ModelConfig):
    import torch

    return torch.float32 if cfg.dtype == "auto" else getattr(torch, cfg.dtype)


def _seeded_build(config, cfg: ModelConfig, seed: int):
    """Build ``config`` with random weights drawn from ``seed``, leaving the global RNG as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(config, dtype=_torch_dtype(cfg), attn_implementation=cfg.attn_implementation)


def _auto_config(target: str, revision: str | None, cfg: ModelConfig):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(target, revision=revision, trust_remote_code=cfg.trust_remote_code)


def _from_pretrained(target: str, revision: str | None, cfg: ModelConfig, hub: bool, placement: Placement):
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {
        **device_map(placement),
        "dtype": placement.dtype or _torch_dtype(cfg),
        "trust_remote_code": cfg.trust_remote_code,
        "weights_only": True,  # a pytorch_model.bin is unpickled as tensors only, never as code
    }
    if revision:
        kwargs["revision"] = revision
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    return _hf_call(lambda: AutoModelForCausalLM.from_pretrained(target, **kwargs), cfg, hub)


def _hf_call(load, cfg: ModelConfig, hub: bool):
    """Run ``load``; turn the hub's and transformers' exceptions into one actionable UserError."""
    try:
        return load()
    except (OSError, ValueError, KeyError, pickle.UnpicklingError) as err:
        where = f"model {cfg.name!r}" + (f" at revision {cfg.revision!r}" if cfg.revision else "")
        reason = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else type(err).__name__
        if isinstance(err, pickle.UnpicklingError):
            reason = "its pytorch_model.bin holds objects other than tensors (refused: unpickling them could run code)"
        hint = _hint(cfg, reason, hub)
        raise UserError(f"cannot load {where}: {reason}" + (f"; {hint}" if hint else "")) from err


def _hint(cfg: ModelConfig, reason: str, hub: bool) -> str:
    if "trust_remote_code" in reason:
        return "this model needs its own code: set model.trust_remote_code: true only if you trust it"
    if "unpickling" in reason:
        return "convert it where you trust its source (load it and `save_pretrained` to safetensors)"
    if not hub:
        return ""
    offline = hub_offline()
    revision = f" --revision {cfg.revision}" if cfg.revision else ""
    subdir = f"DIR/{cfg.revision}" if cfg.revision else "DIR"
    keep = " and keep model.revision (a local directory's revision is its subfolder)" if cfg.revision else ""
    return (
        ("the hub is disabled here (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE); " if offline else "")
        + f"pre-download it where the hub is reachable (`hf download {cfg.name}{revision} --local-dir {subdir}`), "
        + f"then set model.name to DIR{keep}"
    )


def _load_tokenizer(name_or_path: str, revision: str | None, trust_remote_code: bool):
    from scaling_repro.models.tokenizer import load_tokenizer

    return load_tokenizer(name_or_path, revision=revision, trust_remote_code=trust_remote_code)


def _local_tokenizer(cfg: ModelConfig, ckpt: Path, root: Path, meta: CheckpointMeta | None):
    """``model.tokenizer``, else the tokenizer files in the checkpoint, its root, or the metadata's path."""
    if cfg.tokenizer:
        return _load_tokenizer(cfg.tokenizer, None, cfg.trust_remote_code)
    candidates = [ckpt, root.expanduser()]
    if meta is not None and meta.tokenizer:
        candidates.append(ckpt / meta.tokenizer)  # an absolute path replaces ckpt
    for directory in candidates:
        if any((directory / f).is_file() for f in _TOKENIZER_FILES):
            return _load_tokenizer(str(directory), None, cfg.trust_remote_code)
    raise UserError(f"no tokenizer for {ckpt}: none in {', '.join(map(str, candidates))}; set model.tokenizer")


def _check_vocab(model, tokenizer, source: str) -> None:
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise UserError(
            f"{source}: the tokenizer has {len(tokenizer)} entries but the model only {rows} embeddings; "
            "model.tokenizer must be the tokenizer the model was trained with"
        )


def _meta_tokens(meta: CheckpointMeta | None) -> Known:
    return None if meta is None else (meta.pretrain_tokens, META_FILE)
