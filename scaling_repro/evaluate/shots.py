"""Few-shot prompts (Figs. 11-14) and zero-shot directions (Fig. 6).

A k-shot prompt is ``[bos] + demo_1 + SEP + ... + demo_k + SEP + template(query source)``,
where each demonstration is a training example tokenized exactly as in finetuning
(``template(source) + target``, without BOS/EOS) and ``SEP`` is a blank line. The model then
continues with its answer; :func:`cut_at_separator` drops anything after the next blank line,
which an un-finetuned baseline tends to produce while it goes on inventing demonstrations.

Demonstrations are drawn from the (sampled) training set with ``random.Random`` seeded by the
run seed and the shot count, independently for every query, so prompts are identical across
runs, processes and machines for the same seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from scaling_repro.data.collate import encode_example, encode_prompt, encode_text
from scaling_repro.data.types import Example, TaskInfo
from scaling_repro.errors import UserError

SEPARATOR = "\n\n"


def sample_demonstrations(train: Sequence[Example], num_queries: int, shots: int, seed: int) -> list[list[Example]]:
    """Return ``shots`` distinct training examples for each of ``num_queries`` queries."""
    if shots < 1:
        raise UserError(f"eval.few_shot values must be >= 1, got {shots}")
    if len(train) < shots:
        raise UserError(f"eval.few_shot={shots} needs at least {shots} training examples, the task has {len(train)}")
    rng = random.Random(f"few-shot/{seed}/{shots}")
    return [[train[i] for i in rng.sample(range(len(train)), shots)] for _ in range(num_queries)]


def few_shot_prompt(
    tokenizer,
    demonstrations: Sequence[Example],
    query: Example,
    info: TaskInfo,
    *,
    max_source_tokens: int | None = None,
    max_target_tokens: int | None = None,
    max_prompt_tokens: int | None = None,
) -> list[int]:
    """Return the token ids of a few-shot prompt (see the module docstring).

    When longer than ``max_prompt_tokens``, the demonstrations lose tokens from their start;
    BOS and the query prompt are always kept whole.
    """
    query_ids = encode_prompt(tokenizer, query, info, max_source_tokens)
    bos = [query_ids[0]] if tokenizer.bos_token_id is not None and query_ids[:1] == [tokenizer.bos_token_id] else []
    separator = encode_text(tokenizer, SEPARATOR, add_bos=False)
    demos: list[int] = []
    for demo in demonstrations:
        encoded = encode_example(tokenizer, demo, info, max_source_tokens, max_target_tokens)
        demos += encoded.input_ids[len(bos) : -1] + separator  # drop BOS and EOS
    if max_prompt_tokens is not None:
        room = max_prompt_tokens - len(query_ids)
        if room < 0:
            raise UserError(f"the query prompt alone has {len(query_ids)} tokens, over the model's {max_prompt_tokens}")
        demos = demos[len(demos) - room :] if len(demos) > room else demos
    return bos + demos + query_ids[len(bos) :]


def few_shot_prompts(
    tokenizer,
    train: Sequence[Example],
    queries: Sequence[Example],
    info: TaskInfo,
    shots: int,
    seed: int,
    **limits: int | None,
) -> list[list[int]]:
    """Return the ``shots``-shot prompt of every query (demonstrations from ``train``, seeded)."""
    demonstrations = sample_demonstrations(train, len(queries), shots, seed)
    return [few_shot_prompt(tokenizer, demos, query, info, **limits) for demos, query in zip(demonstrations, queries)]


def cut_at_separator(prediction: str) -> str:
    """Return the answer part of a few-shot continuation: the text before the next blank line."""
    return prediction.split(SEPARATOR, 1)[0].strip()
