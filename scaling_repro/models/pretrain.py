"""Pretraining of the tiny base models, so that the pretraining-data axis exists offline.

    scaling-repro pretrain recipes/tiny/pretrain.yaml

For each config name in ``models``: train (or load) one tokenizer for the whole ladder, pack
the corpus into sequences, and train a randomly initialized model with the causal LM
objective with :func:`scaling_repro.train.loop.train` (the finetuning loop; no second loop).
Whenever the tokens seen pass one of ``checkpoint_tokens``, the weights are exported as

    output_dir/<model>/tokens-<N>/   save_pretrained + scaling_repro_meta.json (pretrain_tokens)
    output_dir/<model>/              the tokenizer; train/ holds the resumable training state

which a finetuning recipe loads as ``model: {name: <model>, path: output_dir/<model>,
revision: tokens-<N>}`` (see :mod:`scaling_repro.models.load`).

Objective: the paper pretrained with a modified UL2 mixture of denoisers; tiny models here
use plain next-token prediction on packed sequences, which is enough to give them the
language knowledge the finetuning study measures. Schedule: the intermediate checkpoints are
the pretraining-data axis, so the default LR schedule is constant after warmup: a pilot found
that checkpoints taken in the middle of one cosine schedule give non-monotone points (they
sit at different stages of the decay). AdamW at 3e-3 beat Adafactor at this scale (pilot).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from scaling_repro.errors import RecipeError, UserError
from scaling_repro.recipe import TrainConfig, _int_like

log = logging.getLogger(__name__)

PRETRAIN_TRAIN_DEFAULTS: dict[str, Any] = {
    "optimizer": "adamw",
    "schedule": "constant",
    "warmup_steps": 20,
    "weight_decay": 0.0,
    "max_epochs": 1000,  # the token budget decides the length
    "eval_every": 100,
    "log_every": 20,
    "threads": 1,  # pilot: one torch thread per process is fastest for tiny models
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CorpusConfig(_Section):
    """Where the pretraining documents come from (``source`` picks a corpus generator)."""

    source: Literal["synthetic", "text"] = "synthetic"
    documents: int = Field(50_000, ge=1, description="training documents to generate / read")
    dev_documents: int = Field(500, ge=1)
    seed: int = 0
    parallel_share: float = Field(0.1, ge=0, le=1, description="synthetic: formatted translation pairs")
    sister_share: float = Field(0.1, ge=0, le=1, description="synthetic: zero-shot source language")
    params: dict[str, Any] = Field(default_factory=dict, description="synthetic: the task's task.params")
    files: list[str] = Field(default_factory=list, description="text: files, one document per line")

    _ints = field_validator("documents", "dev_documents", mode="before")(_int_like)


class TokenizerSpec(_Section):
    """A tokenizer to load (``path``), or to train on the corpus and share across the ladder."""

    path: str | None = None
    vocab_size: int = Field(512, ge=8)
    kind: Literal["bpe", "unigram"] = "bpe"
    train_documents: int = Field(20_000, ge=1, description="corpus documents it is trained on")


class PretrainRecipe(_Section):
    """One pretraining study: a ladder of tiny configs trained on one corpus and budget."""

    name: str = "pretrain"
    description: str = ""
    output_dir: str = "pretrained"
    models: list[str] = Field(min_length=1, description="config names (`scaling-repro models`)")
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    seq_len: int = Field(128, ge=8, description="tokens per packed training sequence")
    token_budget: int = Field(2_000_000, ge=1, description="training tokens per model")
    checkpoint_tokens: list[int] = Field(default_factory=list, description="export points; budget added")
    lr: float = Field(3e-3, gt=0)
    batch_size: int = Field(32, ge=1, description="sequences per optimizer step (global)")
    seed: int = 0
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(**PRETRAIN_TRAIN_DEFAULTS))

    _ints = field_validator("token_budget", mode="before")(_int_like)

    @field_validator("checkpoint_tokens", mode="before")
    @classmethod
    def _ints_list(cls, value: Any) -> Any:
        return [_int_like(v) for v in value] if isinstance(value, list) else value

    @field_validator("checkpoint_tokens")
    @classmethod
    def _within_budget(cls, tokens: list[int], info: ValidationInfo) -> list[int]:
        budget = info.data.get("token_budget")
        over = [t for t in tokens if t < 0 or (budget is not None and t > budget)]
        if over:
            raise ValueError(f"must lie in [0, token_budget={budget}]")
        return tokens

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: list[str]) -> list[str]:
        from scaling_repro.models.configs import CONFIG_NAMES, is_config_name

        unknown = [m for m in models if not is_config_name(m)]
        if unknown:
            raise ValueError(f"unknown config {unknown[0]!r}; allowed: {', '.join(CONFIG_NAMES)}")
        return models

    @field_validator("train", mode="before")
    @classmethod
    def _pretraining_defaults(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if "max_steps" in value or "min_steps" in value:
                raise ValueError("train.max_steps / min_steps are set by token_budget; set token_budget instead")
            return {**PRETRAIN_TRAIN_DEFAULTS, **value}
        return value

    @property
    def export_tokens(self) -> list[int]:
        """The token counts at which weights are exported, the budget included, ascending."""
        return sorted(set(self.checkpoint_tokens) | {self.token_budget})

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def steps(self) -> int:
        return -(-self.token_budget // self.tokens_per_step)


def load_pretrain_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PretrainRecipe:
    """Return the validated pretraining recipe of a YAML file (``extends:`` and ``key=value``
    overrides as for finetuning recipes), or raise RecipeError naming the field."""
    from pydantic import ValidationError

    from scaling_repro.sweep import load_recipe_dict, parse_override, set_path

    data = load_recipe_dict(path)
    for text in overrides:
        key, value = parse_override(text)
        set_path(data, key, value)
    try:
        return PretrainRecipe.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"]) or "(recipe)"
            shown = "input" in e and e["type"] != "missing" and not isinstance(e["input"], dict)
            got = f"got {e['input']!r}; " if shown else ""
            lines.append(f"{path}: {where}: {got}{e['msg'].removeprefix('Value error, ')}")
        raise RecipeError("\n".join(lines)) from None


# --- corpus ----------------------------------------------------------------------------------


def _synthetic_documents(corpus: CorpusConfig, split: str) -> list[str]:
    from scaling_repro.data.synthetic import pretraining_corpus

    count, seed = (corpus.documents, corpus.seed) if split == "train" else (corpus.dev_documents, corpus.seed + 7919)
    return pretraining_corpus(count, seed=seed, parallel_share=corpus.parallel_share,
                              sister_share=corpus.sister_share, params=corpus.params)


def _text_documents(corpus: CorpusConfig, split: str) -> list[str]:
    if not corpus.files:
        raise UserError("corpus.files: the 'text' corpus needs at least one file (one document per line)")
    documents: list[str] = []
    for name in corpus.files:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"corpus.files: {name!r} does not exist")
        documents += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(documents) <= corpus.dev_documents:
        raise UserError(f"corpus.files hold {len(documents)} documents; need more than dev_documents={corpus.dev_documents}")
    dev, train = documents[-corpus.dev_documents :], documents[: -corpus.dev_documents]
    return train[: corpus.documents] if split == "train" else dev


CORPUS_SOURCES: dict[str, Callable[[CorpusConfig, str], list[str]]] = {
    "synthetic": _synthetic_documents,
    "text": _text_documents,
}
"""corpus.source -> function(corpus config, "train" | "dev") returning documents."""


def pack_documents(documents: list[list[int]], seq_len: int, bos: int | None, eos: int) -> list:
    """Return EncodedExamples of exactly ``seq_len`` tokens: ``[bos] doc [eos]`` concatenated
    and cut (the remainder is dropped); every token is a label."""
    from scaling_repro.data.collate import EncodedExample

    stream: list[int] = []
    for ids in documents:
        stream += ([bos] if bos is not None else []) + ids + [eos]
    return [
        EncodedExample(input_ids=chunk, labels=list(chunk), prompt_length=0)
        for chunk in (stream[i : i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len))
    ]


def get_tokenizer(recipe: PretrainRecipe, train_documents: list[str]):
    """Return the recipe's tokenizer: loaded from ``tokenizer.path``, or trained once on the
    corpus and kept in ``output_dir/tokenizer`` (reused when present)."""
    from scaling_repro.models.tokenizer import load_tokenizer, train_tokenizer

    if recipe.tokenizer.path:
        return load_tokenizer(recipe.tokenizer.path)
    out = Path(recipe.output_dir) / "tokenizer"
    if (out / "tokenizer.json").is_file():
        return load_tokenizer(str(out))
    if _rank() != 0 or _world() > 1:
        raise UserError(
            f"multi-process pretraining needs the tokenizer first: run `scaling-repro pretrain` once "
            f"in one process with token_budget small, or set tokenizer.path ({out} is missing)"
        )
    spec = recipe.tokenizer
    return train_tokenizer(train_documents[: spec.train_documents], spec.vocab_size, out, kind=spec.kind)


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0"))


def _world() -> int:
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))


# --- training ----------------------------------------------------------------------------------


def revision_name(tokens: int) -> str:
    """The revision (subfolder) of the checkpoint exported at ``tokens``."""
    return f"tokens-{tokens}"


def export_checkpoint(accelerator, model, root: Path, requested: int, tokens_seen: int, step: int,
                      config_name: str, recipe: PretrainRecipe) -> Path | None:
    """Save ``model`` as ``root/tokens-<requested>/`` with its metadata (atomic; collective)."""
    from scaling_repro.models.load import CheckpointMeta, write_checkpoint_meta

    from scaling_repro.train.checkpoint import gathered_weights

    unwrapped, state_dict = gathered_weights(accelerator, model) if accelerator is not None else (model, None)
    if accelerator is not None and not accelerator.is_main_process:
        return None
    final = root / revision_name(requested)
    tmp = root / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    unwrapped.save_pretrained(str(tmp), state_dict=state_dict, safe_serialization=True)
    write_checkpoint_meta(tmp, CheckpointMeta(
        config_name=config_name, pretrain_tokens=tokens_seen, step=step, requested_tokens=requested,
        objective="causal_lm", seq_len=recipe.seq_len, lr=recipe.lr,
        schedule=recipe.train.schedule, optimizer=recipe.train.optimizer,
    ))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    log.info("exported %s (%d tokens, step %d)", final, tokens_seen, step)
    return final


def pretrain_model(recipe: PretrainRecipe, config_name: str, tokenizer, train_set: list, dev_set: list) -> Path:
    """Pretrain one config of the ladder (resuming its run directory) and return its root."""
    import torch

    from scaling_repro.data.collate import collate_for_lm, pad_token_id
    from scaling_repro.models.configs import build_config, build_model
    from scaling_repro.models.load import read_checkpoint_meta
    from scaling_repro.train.loop import StepInfo, train

    root = Path(recipe.output_dir) / config_name
    final = root / revision_name(recipe.token_budget)
    if read_checkpoint_meta(final) is not None:
        log.info("%s: already pretrained (%s); skipping", config_name, final)
        return root
    main_process = _rank() == 0
    if main_process:
        root.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(str(root))
    torch.manual_seed(recipe.seed)
    config = build_config(config_name, len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = build_model(config)
    if 0 in recipe.export_tokens and main_process:
        export_checkpoint(None, model, root, 0, 0, 0, config_name, recipe)
    pad = pad_token_id(tokenizer)
    per_step = recipe.tokens_per_step

    def export_passed(info: StepInfo) -> None:
        before = info.state.tokens_seen - per_step
        for tokens in recipe.export_tokens:
            if before < tokens <= info.state.tokens_seen:
                export_checkpoint(info.accelerator, info.model, root, tokens, info.state.tokens_seen,
                                  info.step, config_name, recipe)

    train_config = recipe.train.model_copy(update={"max_steps": recipe.steps, "min_steps": 0})
    train(model, train_set, dev_set, lambda batch: collate_for_lm(batch, pad), root / "train",
          config=train_config, lr=recipe.lr, batch_size=recipe.batch_size, seed=recipe.seed,
          on_step=export_passed)
    return root


def pretrain(recipe: PretrainRecipe) -> list[Path]:
    """Pretrain every model of ``recipe`` and return their checkpoint roots."""
    from scaling_repro.data.collate import encode_text

    source = CORPUS_SOURCES[recipe.corpus.source]
    train_docs, dev_docs = source(recipe.corpus, "train"), source(recipe.corpus, "dev")
    tokenizer = get_tokenizer(recipe, train_docs)
    eos = tokenizer.eos_token_id

    def encode(docs: list[str]) -> list:
        ids = [encode_text(tokenizer, doc, add_bos=False) for doc in docs]
        return pack_documents(ids, recipe.seq_len, tokenizer.bos_token_id, eos)

    train_set, dev_set = encode(train_docs), encode(dev_docs)
    if not train_set or not dev_set:
        raise UserError(f"corpus too small for seq_len {recipe.seq_len}: {len(train_set)} train / {len(dev_set)} dev sequences")
    epochs = recipe.token_budget / (len(train_set) * recipe.seq_len)
    log.info("corpus: %d train sequences of %d tokens (%.2f epochs for the %d-token budget), %d dev",
             len(train_set), recipe.seq_len, epochs, recipe.token_budget, len(dev_set))
    if epochs > 1:
        log.warning("the token budget repeats the corpus %.1f times; raise corpus.documents for one epoch", epochs)
    return [pretrain_model(recipe, name, tokenizer, train_set, dev_set) for name in recipe.models]
