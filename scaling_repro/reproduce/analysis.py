"""The study's fits: the paper's procedure applied to the finetuning results of a reproduction.

Experiments are selected from the RunRecords by their factors, not by recipe name, so one run
serves every experiment it belongs to (the paper's 1B runs are points of all three):

- ``model_size``: every model at its final checkpoint, default PET size (x = model_params);
- ``pretrain_data``: the base model at each checkpoint, default PET size (x = pretrain_tokens);
- ``pet_size``: the base model at its final checkpoint, each prompt length / LoRA rank.

Runs with the same settings and another seed are pooled as the runs of one point (their mean
is fitted, the paper's noise reduction). Held out: the largest x and the largest Df of each
experiment (the paper's bold settings). Per method this fits the multiplicative and additive
joint laws (beta and E shared over model size and pretraining data, then every factor refit,
Sec. 3), with bootstrap intervals on the multiplicative one, and the single-variable law per
model size (Fig. 1). Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Iterable

from pydantic import BaseModel, ConfigDict

from scaling_repro.errors import UserError
from scaling_repro.fit import LawFit
from scaling_repro.fit.joint import bootstrap_joint, fit_joint
from scaling_repro.fit.points import FitPoints, points_from_records
from scaling_repro.fit.record import JointFit
from scaling_repro.reproduce.checks import StudyChecks, run_checks
from scaling_repro.reproduce.plan import Analysis
from scaling_repro.results import RESULT_FILE, RunRecord, atomic_write_text

log = logging.getLogger(__name__)

METHODS = ("full", "prompt", "lora")
METHOD_NAMES = {"full": "FMT", "prompt": "Prompt", "lora": "LoRA"}
HOLDOUT = "largest"  # largest x or largest Df: the paper's held-out (bold) settings
SINGLE_MIN_POINTS = 3  # L(Df) = A Df^-beta + E has 3 parameters


class MethodFits(BaseModel):
    """Every fit of one finetuning method."""

    model_config = ConfigDict(extra="forbid")

    method: str
    multiplicative: JointFit
    additive: JointFit
    single: dict[str, LawFit]  # model name -> L(Df) = A Df^-beta + E, on the model-size points


class StudyAnalysis(BaseModel):
    """The fits and checks of a reproduction; ``fingerprint`` identifies the results used."""

    model_config = ConfigDict(extra="forbid")

    fingerprint: str
    settings: Analysis
    methods: dict[str, MethodFits]
    checks: StudyChecks

    def save(self, path: str | Path) -> Path:
        """Write this analysis as JSON atomically; return the path."""
        atomic_write_text(path, self.model_dump_json(indent=1) + "\n")
        return Path(path)


def results_fingerprint(runs_dir: str | Path, settings: Analysis) -> str:
    """Return a hash of every result file's path, size and mtime, and of the settings: equal
    fingerprints mean the analysis would see the same results."""
    digest = hashlib.sha256(settings.model_dump_json().encode())
    for path in sorted(Path(runs_dir).rglob(RESULT_FILE)):
        stat = path.stat()
        digest.update(f"{path.relative_to(runs_dir)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def final_checkpoints(records: Iterable[RunRecord]) -> dict[str, int]:
    """Return each model's largest pretraining token count among the records."""
    final: dict[str, int] = {}
    for record in records:
        if record.pretrain_tokens is not None:
            final[record.model] = max(final.get(record.model, 0), record.pretrain_tokens)
    return final


def default_pet(record: RunRecord, settings: Analysis) -> bool:
    """True for FMT and for PET runs at the default prompt length / LoRA rank."""
    default = {"full": None, "prompt": settings.prompt_length, "lora": settings.lora_rank}[record.method]
    return record.pet_params == default


def experiment_records(records: list[RunRecord], factor: str, method: str, settings: Analysis) -> list[RunRecord]:
    """Return the ok runs of ``method`` that belong to ``factor``'s experiment (module docstring)."""
    final = final_checkpoints(records)
    runs = [r for r in records if r.ok and r.method == method and r.test_loss is not None]
    if factor == "model_size":
        return [r for r in runs if r.pretrain_tokens == final.get(r.model) and default_pet(r, settings)]
    base = [r for r in runs if r.model == settings.base_model]
    if factor == "pretrain_data":
        return [r for r in base if default_pet(r, settings)]
    if factor == "pet_size":
        return [r for r in base if r.pretrain_tokens == final.get(r.model)]
    raise ValueError(f"unknown factor {factor!r}")


def experiment_points(records: list[RunRecord], factor: str, method: str, settings: Analysis) -> FitPoints | None:
    """Return the FitPoints of one experiment, or None when it has fewer than 2 x values."""
    chosen = experiment_records(records, factor, method, settings)
    field = {"model_size": "model_params", "pretrain_data": "pretrain_tokens", "pet_size": "pet_params"}[factor]
    if len({getattr(r, field) for r in chosen}) < 2:
        return None
    return points_from_records(chosen, factor, method=method, holdout=HOLDOUT)


def fit_method(records: list[RunRecord], method: str, settings: Analysis) -> MethodFits:
    """Return the multiplicative (with bootstrap) and additive joint fits and the per-model
    single-variable fits of one method."""
    factors = {}
    for factor in ("model_size", "pretrain_data", "pet_size"):
        points = experiment_points(records, factor, method, settings)
        if points is not None:
            factors[factor] = points
    if "model_size" not in factors:
        raise UserError(f"{METHOD_NAMES[method]}: the results hold fewer than 2 model sizes; nothing to fit")
    labels = {"task": records[0].task, "method": method}
    joints = {}
    for law in ("multiplicative", "additive"):
        joints[law] = fit_joint(factors, law, labels=labels)
    if settings.bootstrap:
        joints["multiplicative"] = bootstrap_joint(
            joints["multiplicative"], factors, settings.bootstrap, "points", settings.level, seed=0
        )
    single = {}
    size_runs = experiment_records(records, "model_size", method, settings)
    for model in sorted({r.model for r in size_runs}, key=lambda m: min(r.model_params or 0 for r in size_runs if r.model == m)):
        points = points_from_records([r for r in size_runs if r.model == model], "finetune_data", method=method,
                                     holdout="largest-df")
        if (~points.held_out).sum() < SINGLE_MIN_POINTS:
            log.warning("%s %s: %d fitting data sizes; the single-variable law (3 parameters) needs %d, skipped",
                        METHOD_NAMES[method], model, (~points.held_out).sum(), SINGLE_MIN_POINTS)
            continue
        single[model] = points.fit("single", labels={"model": model})
    return MethodFits(method=method, multiplicative=joints["multiplicative"], additive=joints["additive"], single=single)


def analyse(records: list[RunRecord], settings: Analysis, fingerprint: str = "") -> StudyAnalysis:
    """Return the fits of every method present and the study's checks (noise, monotonicity,
    largest model best, critical data sizes, zero-shot)."""
    present = [m for m in METHODS if any(r.ok and r.method == m for r in records)]
    if not present:
        raise UserError("no successful finetuning runs to analyse")
    methods = {}
    for method in present:
        log.info("fitting %s", METHOD_NAMES[method])
        methods[method] = fit_method(records, method, settings)
    size_records = {m: experiment_records(records, "model_size", m, settings) for m in present}
    checks = run_checks(records, size_records, {m: f.multiplicative for m, f in methods.items()}, settings)
    return StudyAnalysis(fingerprint=fingerprint, settings=settings, methods=methods, checks=checks)


def load_analysis(path: str | Path) -> StudyAnalysis | None:
    """Return the analysis saved in ``path``, or None when it is missing or unreadable."""
    try:
        return StudyAnalysis.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
