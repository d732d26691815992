"""Running checks one by one, each in its own ``try``: a check that raises becomes an
``error`` row with its message and the figures it had measured, and the next check runs.

A check is a function ``check(ctx, figures) -> status``: it fills ``figures`` as it measures
and returns ``"ok"`` or ``"FAIL: why"``; raising :class:`Skip` makes the row ``skipped: why``.
After every check its scratch folder is deleted and the process is set back for the next one
(no DeepSpeed config left set, no Accelerate state, device memory freed).
"""

from __future__ import annotations

import gc
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scaling_repro.errors import one_line
from scaling_repro.gpu_checks.report import Report, Row

log = logging.getLogger(__name__)

CUDA_NEEDED = "needs CUDA"


class Skip(Exception):
    """The check cannot run here; ``str(err)`` says why."""


@dataclass(frozen=True)
class Sizes:
    """What one check run uses: the GPU sizes, or tiny ones for a CPU smoke run."""

    config: str  # model config of the 1B checks
    vocab: int
    small_config: str  # model config of the resume and attention checks
    small_vocab: int
    warmup_steps: int
    timed_steps: int
    eval_batch: int  # test-loss memory batch
    eval_source_tokens: int  # prompt tokens (with BOS) of each test-loss example
    eval_target_tokens: int  # target tokens (with EOS)
    generate_examples: int
    new_tokens: int
    dev_examples: int
    length_scale: float  # of the tasks' lengths and caps


GPU = Sizes("paper-1b", 256_000, "tiny-xl", 32_000, 3, 21, 32, 512, 256, 32, 16, 32, 1.0)
SMOKE = Sizes("tiny-s", 300, "tiny-xs", 200, 1, 3, 4, 24, 12, 4, 4, 8, 0.125)


@dataclass
class Context:
    """What every check gets: its sizes, a scratch root and what this machine has."""

    sizes: Sizes
    scratch: Path
    smoke: bool

    @property
    def on_gpu(self) -> bool:
        return torch.cuda.is_available()

    def folder(self, name: str) -> Path:
        """Return a new empty scratch folder ``name`` (deleted after the check)."""
        path = self.scratch / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def require_deepspeed(self) -> str:
        """Return DeepSpeed's version; raise Skip when it cannot be imported."""
        from scaling_repro.train.distributed import deepspeed_available

        ok, reason = deepspeed_available()
        if not ok:
            raise Skip(reason)
        return reason.removeprefix("deepspeed ")


Check = Callable[[Context, dict[str, Any]], str]


def run_check(name: str, check: Check, ctx: Context, report: Report) -> Row:
    """Run one check, add its row to ``report`` (written at once) and return the row."""
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    log.warning("gpu check: %s", name)
    try:
        status = check(ctx, figures)
    except Skip as err:
        status = f"skipped: {err}"
    except Exception as err:  # noqa: BLE001 - one check's failure must not lose the report
        log.exception("gpu check %s raised", name)
        status = f"error: {one_line(err)}"
    finally:
        reset_process(ctx)
    row = Row(name, status, figures, round(time.perf_counter() - started, 2))
    report.add(row)
    return row


def reset_process(ctx: Context) -> None:
    """Delete the scratch folders and set the process back for the next check: no
    preemption request, no DeepSpeed config for transformers' loaders, no Accelerate state
    (each only where a check imported it), device memory freed."""
    from scaling_repro.train import stop

    stop.clear_preemption()
    hf_deepspeed = sys.modules.get("transformers.integrations.deepspeed")
    if hf_deepspeed is not None:
        hf_deepspeed.unset_hf_deepspeed_config()
    if "accelerate.state" in sys.modules:
        from scaling_repro.train.distributed import reset_accelerator_state

        reset_accelerator_state()
    for path in ctx.scratch.iterdir() if ctx.scratch.is_dir() else ():
        shutil.rmtree(path, ignore_errors=True)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def outcome(problems: list[str], figures: dict[str, Any], ctx: Context) -> str:
    """Return a check's status: ``FAIL: ...`` naming ``problems``, else ``ok``; on a GPU
    ``ok, but ...`` when the check noted that it could not take the recipe's path."""
    if problems:
        return "FAIL: " + "; ".join(problems)
    note = figures.get("note")
    return f"ok, but {note}" if note and not ctx.smoke else "ok"


def gib(n_bytes: float) -> float:
    """Return bytes in GiB, rounded to 0.01."""
    return round(n_bytes / 2**30, 2)


def memory_now() -> float | None:
    """Return the device memory allocated now (GiB), or None on CPU."""
    return gib(torch.cuda.memory_allocated()) if torch.cuda.is_available() else None


def memory_peak() -> float | None:
    """Return the peak device memory allocated since the last reset (GiB), or None on CPU."""
    return gib(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
