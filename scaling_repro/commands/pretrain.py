"""``scaling-repro pretrain``: pretrain the tiny base models and export intermediate checkpoints."""

from __future__ import annotations

import argparse

from scaling_repro.commands.common import add_command, add_recipe_args


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "pretrain",
        "pretrain tiny base models on the offline corpus, with checkpoints at given token counts",
        """
        Trains a tokenizer on the corpus (or loads tokenizer.path), then each config in
        `models` from random init with the causal LM objective (the paper used a UL2 variant)
        through the same training loop as finetuning. Whenever the tokens seen pass a value of
        `checkpoint_tokens` (and at `token_budget`), the weights are exported to
        OUTPUT_DIR/<model>/tokens-<N>/ with scaling_repro_meta.json holding pretrain_tokens.
        Finetuning recipes use them as model: {name: <model>, path: OUTPUT_DIR/<model>,
        revision: tokens-<N>}. Rerunning resumes an interrupted model and skips finished ones.
        """,
        """
        scaling-repro pretrain recipes/tiny/pretrain.yaml
        scaling-repro pretrain recipes/tiny/pretrain.yaml models=[tiny-s] token_budget=200000
        """,
    )
    add_recipe_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_repro.commands.outputs import check_output_folder
    from scaling_repro.pretrain.recipe import load_pretrain_recipe
    from scaling_repro.pretrain.run import pretrain

    recipe = load_pretrain_recipe(args.recipe, args.overrides)
    check_output_folder(recipe.output_dir, "output_dir")
    for root in pretrain(recipe):
        revisions = sorted((p.name for p in root.glob("tokens-*")), key=lambda n: int(n.split("-")[1]))
        print(f"{root}: {', '.join(revisions)}")
    return 0
