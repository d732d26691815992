"""``evaluate_model``: everything measured on the best checkpoint, as one :class:`EvalResult`.

Order of work: check that every configured metric can run (a missing BLEURT checkpoint fails
before any decoding), test loss per test set, greedy generations on the test sets scored with
the task's metrics, zero-shot directions, then k-shot prompts. Every process of a distributed
run calls :func:`evaluate_model` with the same arguments; each does its share and all return
the same result (only the main process should write it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from scaling_repro.config.recipe import EvalConfig
from scaling_repro.data.collate import collate_for_lm, encode_examples, encode_prompt, pad_token_id
from scaling_repro.data.types import Example, TaskData
from scaling_repro.errors import UserError
from scaling_repro.evaluate.generate import greedy_generate
from scaling_repro.evaluate.metrics import ALL, METRIC_NAMES, Generations, score_sets
from scaling_repro.evaluate.perplexity import NllSum, losses_per_set, overall
from scaling_repro.evaluate.shots import cut_at_separator, few_shot_prompts
from scaling_repro.fileio import atomic_write_text
from scaling_repro.ranks import ProcessInfo, current_process
from scaling_repro.results import ZERO_SHOT_LOSS

log = logging.getLogger(__name__)

MEAN = "mean"
"""Key of the zero-shot score averaged over directions (source languages)."""
GENERATIONS_FILE = "generations.jsonl"


@dataclass
class EvalResult:
    """What evaluation measured; :meth:`record_fields` are RunRecord fields of the same names."""

    test_loss: float | None = None
    test_losses: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    zero_shot: dict[str, dict[str, float]] = field(default_factory=dict)
    few_shot: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    num_examples: dict[str, int] = field(default_factory=dict)
    generations: list[dict[str, Any]] = field(default_factory=list)
    """One row per generated output: kind ('test', 'zero_shot', 'k-shot'), set, source,
    reference, prediction, lang; written by :func:`write_generations` for later re-scoring."""

    def record_fields(self) -> dict[str, Any]:
        """Return the fields to set on a RunRecord, e.g. ``record.model_copy(update=...)``."""
        return {
            "test_loss": self.test_loss,
            "test_losses": self.test_losses,
            "metrics": self.metrics,
            "zero_shot": self.zero_shot,
            "few_shot": self.few_shot,
            "num_examples": self.num_examples,
        }


def with_direction_mean(scores: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Return metric -> direction -> score with ``'mean'`` over directions in place of ``'all'``
    (the paper averages zero-shot scores over source languages, not over examples)."""
    out = {}
    for metric, by_set in scores.items():
        directions = {name: value for name, value in by_set.items() if name != ALL}
        out[metric] = {**directions, MEAN: sum(directions.values()) / len(directions)}
    return out


def write_generations(run_dir: str | Path, result: EvalResult) -> Path:
    """Write ``result.generations`` to ``run_dir/generations.jsonl`` atomically; return the path."""
    import json

    path = Path(run_dir) / GENERATIONS_FILE
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in result.generations))
    return path


def _metrics_to_run(eval_cfg: EvalConfig, task: TaskData) -> list[str]:
    metrics = list(eval_cfg.metrics) if eval_cfg.metrics is not None else list(task.info.metrics)
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise UserError(f"task {task.info.name!r} lists unknown metrics {unknown}; allowed: {', '.join(METRIC_NAMES)}")
    return metrics


def _max_prompt_tokens(model: torch.nn.Module, max_new_tokens: int) -> int | None:
    """Room for a prompt in the model's context: positions minus new tokens and virtual tokens."""
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return None
    peft_config = getattr(model, "active_peft_config", None)
    virtual = getattr(peft_config, "num_virtual_tokens", None) or 0
    return positions - max_new_tokens - virtual


@dataclass
class _Evaluator:
    """The per-call context shared by the steps of :func:`evaluate_model`."""

    model: torch.nn.Module
    tokenizer: Any
    task: TaskData
    eval_cfg: EvalConfig
    metrics: list[str]
    max_source_tokens: int | None
    max_target_tokens: int | None
    process: ProcessInfo
    autocast_dtype: torch.dtype | None = None
    bleurt: Any = None

    def autocast(self) -> torch.autocast:
        """The training precision's autocast, entered around the evaluated model's forward passes
        only (never around BLEURT, which scores in float32)."""
        device_type = next(self.model.parameters()).device.type
        return torch.autocast(device_type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    @property
    def max_new_tokens(self) -> int:
        return self.eval_cfg.max_new_tokens or self.max_target_tokens or self.task.info.max_target_tokens

    def capped(self, examples: Sequence[Example]) -> list[Example]:
        cap = self.eval_cfg.max_generate_examples
        return list(examples[:cap] if cap else examples)

    def generate(self, prompts: list[list[int]]) -> list[str]:
        if self.tokenizer.eos_token_id is None:
            raise UserError("greedy decoding stops at EOS, but the tokenizer has no eos token; set model.tokenizer")
        with self.autocast():
            outputs = greedy_generate(
                self.model,
                prompts,
                eos_token_id=self.tokenizer.eos_token_id,
                pad_token_id=pad_token_id(self.tokenizer),
                max_new_tokens=self.max_new_tokens,
                batch_size=self.eval_cfg.generate_batch_size or self.eval_cfg.batch_size,
                process=self.process,
                progress=True,
            )
        return [self.tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in outputs]

    def bleurt_fn(self):
        if self.bleurt is None:
            from scaling_repro.evaluate.bleurt import load_bleurt

            device = next(self.model.parameters()).device
            self.bleurt = load_bleurt(self.eval_cfg.bleurt_checkpoint, device=device, dtype=torch.float32)
        return partial(self.bleurt.score, batch_size=self.eval_cfg.batch_size, process=self.process)

    def generate_and_score(
        self, kind: str, sets: dict[str, list[Example]], prompts: dict[str, list[list[int]]], rows: list[dict]
    ) -> dict[str, dict[str, float]]:
        """Decode every set's prompts in one pass, score them, and append the rows."""
        names = [name for name in sets if sets[name]]
        flat = [p for name in names for p in prompts[name]]
        texts = self.generate(flat)
        by_set: dict[str, Generations] = {}
        start = 0
        for name in names:
            examples = sets[name]
            predictions = texts[start : start + len(examples)]
            start += len(examples)
            if kind.endswith("-shot"):
                predictions = [cut_at_separator(p) for p in predictions]
            langs = [e.lang or self.task.info.target_lang for e in examples]
            by_set[name] = Generations(predictions, [e.target for e in examples], langs)
            rows += [
                {"kind": kind, "set": name, "source": e.source, "reference": e.target, "prediction": p, "lang": lang}
                for e, p, lang in zip(examples, predictions, langs)
            ]
        bleurt = self.bleurt_fn() if "bleurt" in self.metrics else None
        return score_sets(self.metrics, by_set, bleurt=bleurt)

    def prompts(self, sets: dict[str, list[Example]]) -> dict[str, list[list[int]]]:
        info = self.task.info
        return {
            name: [encode_prompt(self.tokenizer, e, info, self.max_source_tokens) for e in examples]
            for name, examples in sets.items()
        }


def evaluate_model(
    model: torch.nn.Module,
    tokenizer: Any,
    task: TaskData,
    eval_cfg: EvalConfig,
    *,
    max_source_tokens: int | None = None,
    max_target_tokens: int | None = None,
    seed: int = 0,
    compute_loss: bool = True,
    process: ProcessInfo | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> EvalResult:
    """Return the test loss, generation metrics, zero- and few-shot scores of ``model``.

    Everything runs on the model's device. The model's forward passes (test loss, decoding) run
    under ``autocast_dtype`` autocast when given (the training precision: FMT, prompt tuning and
    LoRA then score and decode with the same numerics, whichever module's forward the decoder
    calls); BLEURT scores outside it, in float32.

    ``model`` is a causal LM or a PEFT model (prompt tuning or LoRA), unwrapped and whole;
    ``max_source_tokens``/``max_target_tokens`` are the recipe's ``task`` limits (None = the
    task's); ``seed`` seeds the few-shot demonstrations. Set ``compute_loss=False`` for the
    un-finetuned "Baseline" few-shot runs. Generation steps run only when ``eval_cfg.generate``.
    """
    process = process or current_process()
    metrics = _metrics_to_run(eval_cfg, task)
    if eval_cfg.generate and "bleurt" in metrics:
        from scaling_repro.evaluate.bleurt import resolve_checkpoint

        resolve_checkpoint(eval_cfg.bleurt_checkpoint)  # fail before hours of decoding
    result = EvalResult(num_examples={"train": len(task.train), "dev": len(task.dev)})
    ev = _Evaluator(
        model, tokenizer, task, eval_cfg, metrics, max_source_tokens, max_target_tokens, process, autocast_dtype
    )
    if compute_loss and task.test:
        _test_loss(ev, result)
    if eval_cfg.generate and task.test:
        sets = {name: ev.capped(examples) for name, examples in task.test.items()}
        result.metrics = ev.generate_and_score("test", sets, ev.prompts(sets), result.generations)
        result.num_examples["generated"] = sum(len(s) for s in sets.values())
        log.info("test metrics: %s", {m: round(v[ALL], 3) for m, v in result.metrics.items()})
    if eval_cfg.zero_shot and not ev.task.zero_shot:
        raise UserError(f"eval.zero_shot is set but task {task.info.name!r} has no zero-shot directions")
    if compute_loss and eval_cfg.zero_shot:
        _zero_shot_loss(ev, result)
    if eval_cfg.generate and eval_cfg.zero_shot:
        _zero_shot(ev, result)
    if eval_cfg.generate:
        for shots in eval_cfg.few_shot:
            _few_shot(ev, result, shots, seed)
    return result


def _set_losses(ev: _Evaluator, sets: dict[str, Sequence[Example]], kind: str) -> dict[str, NllSum]:
    """Teacher-forced NLL of every example of every set, summed per set over all processes."""
    encoded = {
        name: encode_examples(
            ev.tokenizer,
            examples,
            ev.task.info,
            ev.max_source_tokens,
            ev.max_target_tokens,
            split=f"{kind}/{name}",
            log_counts=ev.process.is_main,
        )
        for name, examples in sets.items()
    }
    collate = partial(collate_for_lm, pad_id=pad_token_id(ev.tokenizer))
    with ev.autocast():
        return losses_per_set(ev.model, encoded, collate, ev.eval_cfg.batch_size, ev.process)


def _test_loss(ev: _Evaluator, result: EvalResult) -> None:
    losses = _set_losses(ev, ev.task.test, "test")
    result.test_losses = {name: value.mean for name, value in losses.items()}
    result.test_loss = overall(losses).mean
    result.num_examples.update({f"test/{name}": len(examples) for name, examples in ev.task.test.items()})
    result.num_examples["test"] = sum(len(examples) for examples in ev.task.test.values())
    total = overall(losses)
    log.info("test loss %.4f (ppl %.2f) over %d target tokens", total.mean, total.perplexity, total.tokens)


def _zero_shot_loss(ev: _Evaluator, result: EvalResult) -> None:
    """Zero-shot test loss: teacher-forced, every pair of every zero-shot direction (not capped
    like decoding), averaged over directions as the paper averages its zero-shot scores."""
    losses = _set_losses(ev, ev.task.zero_shot, "zero_shot")
    result.zero_shot.update(with_direction_mean({ZERO_SHOT_LOSS: {name: value.mean for name, value in losses.items()}}))
    result.num_examples.update(
        {f"zero_shot_loss/{name}": len(examples) for name, examples in ev.task.zero_shot.items()}
    )
    log.info("zero-shot loss %.4f", result.zero_shot[ZERO_SHOT_LOSS][MEAN])


def _zero_shot(ev: _Evaluator, result: EvalResult) -> None:
    sets = {name: ev.capped(examples) for name, examples in ev.task.zero_shot.items()}
    scores = ev.generate_and_score("zero_shot", sets, ev.prompts(sets), result.generations)
    result.zero_shot.update(with_direction_mean(scores))
    result.num_examples.update({f"zero_shot/{name}": len(examples) for name, examples in sets.items()})
    log.info("zero-shot: %s", {m: round(v[MEAN], 3) for m, v in result.zero_shot.items()})


def _few_shot(ev: _Evaluator, result: EvalResult, shots: int, seed: int) -> None:
    sets = {name: ev.capped(examples) for name, examples in ev.task.test.items()}
    limits = dict(
        max_source_tokens=ev.max_source_tokens,
        max_target_tokens=ev.max_target_tokens,
        max_prompt_tokens=_max_prompt_tokens(ev.model, ev.max_new_tokens),
    )
    prompts = {
        name: few_shot_prompts(ev.tokenizer, ev.task.train, examples, ev.task.info, shots, seed, **limits)
        for name, examples in sets.items()
    }
    result.few_shot[str(shots)] = ev.generate_and_score(f"{shots}-shot", sets, prompts, result.generations)
    log.info("%d-shot: %s", shots, {m: round(v[ALL], 3) for m, v in result.few_shot[str(shots)].items()})
