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
the pretraining-data axis, so the default LR schedule is constant after warmup: checkpoints
taken in the middle of one cosine schedule give non-monotone points (they sit at different
stages of the decay). AdamW at 3e-3 beat Adafactor at this scale (measured).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from scaling_repro.errors import UserError
from scaling_repro.pretrain.corpus import CORPUS_SOURCES, get_tokenizer, pack_documents
from scaling_repro.pretrain.recipe import PretrainRecipe, revision_name
from scaling_repro.ranks import current_process

log = logging.getLogger(__name__)


def export_checkpoint(
    accelerator,
    model,
    root: Path,
    requested: int,
    tokens_seen: int,
    step: int,
    config_name: str,
    recipe: PretrainRecipe,
) -> Path | None:
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
    write_checkpoint_meta(
        tmp,
        CheckpointMeta(
            config_name=config_name,
            pretrain_tokens=tokens_seen,
            step=step,
            requested_tokens=requested,
            objective="causal_lm",
            seq_len=recipe.seq_len,
            lr=recipe.lr,
            schedule=recipe.train.schedule,
            optimizer=recipe.train.optimizer,
        ),
    )
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
    main_process = current_process().is_main
    if main_process:
        root.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(str(root))
    torch.manual_seed(recipe.seed)
    config = build_config(
        config_name,
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = build_model(config)
    if 0 in recipe.export_tokens and main_process:
        export_checkpoint(None, model, root, 0, 0, 0, config_name, recipe)
    pad = pad_token_id(tokenizer)
    per_step = recipe.tokens_per_step

    def export_passed(info: StepInfo) -> None:
        before = info.state.tokens_seen - per_step
        for tokens in recipe.export_tokens:
            if before < tokens <= info.state.tokens_seen:
                export_checkpoint(
                    info.accelerator, info.model, root, tokens, info.state.tokens_seen, info.step, config_name, recipe
                )

    train_config = recipe.train.model_copy(update={"max_steps": recipe.steps, "min_steps": 0})
    train(
        model,
        train_set,
        dev_set,
        lambda batch: collate_for_lm(batch, pad),
        root / "train",
        config=train_config,
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        seed=recipe.seed,
        on_step=export_passed,
    )
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
        raise UserError(
            f"corpus too small for seq_len {recipe.seq_len}: {len(train_set)} train / {len(dev_set)} dev sequences"
        )
    epochs = recipe.token_budget / (len(train_set) * recipe.seq_len)
    log.info(
        "corpus: %d train sequences of %d tokens (%.2f epochs for the %d-token budget), %d dev",
        len(train_set),
        recipe.seq_len,
        epochs,
        recipe.token_budget,
        len(dev_set),
    )
    if epochs > 1:
        log.warning("the token budget repeats the corpus %.1f times; raise corpus.documents for one epoch", epochs)
    return [pretrain_model(recipe, name, tokenizer, train_set, dev_set) for name in recipe.models]
