"""The plan a study prints before anything starts (``reproduce --dry-run`` stops after it):
runs per recipe and method, the estimated GPU-hours from the trainer's cost model
(:mod:`scaling_repro.launch.cost`) at the measured (or, before the models stage has run, the
plan's assumed) real tokens per example, the GPU-hours of each size of a sized plan, and what
each finding needs from the grid with whether this grid has it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from scaling_repro.config.recipe import RunSpec, pet_size
from scaling_repro.config.study_plan import PRETRAINED_DIR, StudyPlan, load_plan, size_plans

METHODS = ("full", "prompt", "lora")
FACTORS = ("model_size", "pretrain_data", "pet_size", "data", "seeds", "zero_shot")


@dataclass(frozen=True)
class CostBasis:
    """What the GPU-hour estimate assumes: real tokens per training example and where from."""

    tokens_per_example: float | None
    source: str


def cost_basis(plan: StudyPlan, out_dir: Path | None = None) -> CostBasis:
    """Return the tokens per example the models stage measured in ``out_dir``, else the plan's."""
    if out_dir is not None:
        from scaling_repro.reproduce.base_models import TOKENS_FILE, measured_tokens_per_example

        measured = measured_tokens_per_example(out_dir)
        if measured is not None:
            return CostBasis(measured, f"measured ({out_dir / TOKENS_FILE})")
    if plan.cost.tokens_per_example is None:
        return CostBasis(None, "the task's length cap (an upper bound: the plan assumes no tokens per example)")
    return CostBasis(plan.cost.tokens_per_example, plan.cost.source or "assumed by the plan")


@dataclass
class PlanEstimate:
    """Runs and estimated GPU-hours of a plan, by recipe and method."""

    runs: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    hours: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    pretrain_hours: float = 0.0

    @property
    def total_runs(self) -> int:
        return sum(self.runs.values())

    @property
    def total_hours(self) -> float:
        return sum(self.hours.values()) + self.pretrain_hours


def estimate(plan: StudyPlan, specs: list[tuple[RunSpec, Path]], basis: CostBasis) -> PlanEstimate:
    """Return the runs and GPU-hours of ``specs`` (grouped by recipe and method) and of the plan's pretraining."""
    from scaling_repro.launch.cost import CostAssumptions, gpu_hours, pretrain_gpu_hours

    assumptions = CostAssumptions(tokens_per_example=basis.tokens_per_example)
    result = PlanEstimate()
    for spec, recipe in specs:
        key = (recipe.stem.removeprefix(f"{plan.name}-"), spec.method.kind)
        result.runs[key] += 1
        result.hours[key] += gpu_hours(spec, assumptions)
    result.pretrain_hours = sum(pretrain_gpu_hours(m.name, m.token_budget, assumptions) for m in plan.models)
    return result


def size_estimates(path: Path, basis: CostBasis | None = None) -> dict[str, PlanEstimate]:
    """Return the estimate of every size beside plan file ``path`` (sized plans only), each at
    its own plan's assumed tokens per example unless ``basis`` is given."""
    from scaling_repro.reproduce.plan_runs import load_finetune_specs

    out = {}
    for size, sized in size_plans(path).items():
        plan = load_plan(sized)
        out[size] = estimate(plan, load_finetune_specs(plan), basis or cost_basis(plan))
    return out


def _final_revisions(plan: StudyPlan) -> set[tuple[str, str]]:
    finals = {(f"{PRETRAINED_DIR}/{m.name}", m.revisions[-1]) for m in plan.models}
    return finals | {(m.name, m.revisions[-1]) for m in plan.hub_models}


def grid_coverage(plan: StudyPlan, specs: list[tuple[RunSpec, Path]]) -> dict[str, dict[str, int]]:
    """Return, per method, the distinct values of each factor in the grid: ``model_size``
    (models at their final checkpoint), ``pretrain_data`` (most revisions of one model),
    ``pet_size`` (most PET sizes on one model and revision), ``data`` (finetuning data sizes),
    ``seeds``, ``zero_shot`` (model sizes scored zero-shot)."""
    finals = _final_revisions(plan)
    sets: dict[str, dict[str, set]] = {m: defaultdict(set) for m in METHODS}
    per_model: dict[str, dict[str, set]] = {m: defaultdict(set) for m in METHODS}
    per_checkpoint: dict[str, dict[tuple, set]] = {m: defaultdict(set) for m in METHODS}
    for spec, _ in specs:
        kind = spec.method.kind
        if spec.train.max_steps == 0:
            continue
        model = (spec.model.path or spec.model.name, spec.model.revision)
        if model in finals:
            sets[kind]["model_size"].add(model[0])
            if spec.eval.zero_shot:
                sets[kind]["zero_shot"].add(model[0])
        per_model[kind][model[0]].add(model[1])
        per_checkpoint[kind][model].add(pet_size(spec.method))
        sets[kind]["data"].add(spec.task.train_examples)
        sets[kind]["seeds"].add(spec.task.seed)
    coverage = {}
    for kind in METHODS:
        counts = {name: len(values) for name, values in sets[kind].items()}
        counts["pretrain_data"] = max((len(v) for v in per_model[kind].values()), default=0)
        counts["pet_size"] = max((len(v) for v in per_checkpoint[kind].values()), default=0)
        coverage[kind] = {k: counts.get(k, 0) for k in FACTORS}
    return coverage


def finding_needs(coverage: dict[str, dict[str, int]]) -> list[tuple[str, str, bool]]:
    """Return (finding, what it needs from the grid, whether the grid has it) for findings 1-7.
    A fit needs at least 3 values of its factor and 4 data sizes (the largest of each held out);
    comparisons need 2 seeds for the noise they are judged against."""
    c = coverage

    def axis(kind: str, factor: str) -> bool:
        return c[kind][factor] >= 3 and c[kind]["data"] >= 4

    seeds = all(c[m]["seeds"] >= 2 for m in METHODS if c[m]["data"])
    pet = ("prompt", "lora")
    return [
        (
            "1 the multiplicative law fits and extrapolates",
            ">= 3 x values and >= 4 Df per axis and method (largest of each held out)",
            any(axis(m, f) for m in METHODS for f in ("model_size", "pretrain_data")),
        ),
        (
            "2 alpha_m > alpha_p",
            "model-size and pretraining-data axes for one method",
            any(axis(m, "model_size") and axis(m, "pretrain_data") for m in METHODS),
        ),
        (
            "3 PET size is ineffective",
            ">= 3 prompt lengths or LoRA ranks on one model",
            any(axis(m, "pet_size") for m in pet),
        ),
        (
            "4 FMT is the most data-hungry (beta)",
            "FMT and a PET method on one axis, >= 4 Df each",
            axis("full", "model_size") and any(axis(m, "model_size") for m in pet),
        ),
        (
            "5 PET's alpha / beta above FMT's",
            "FMT and a PET method on the model-size or pretraining-data axis",
            any(axis("full", f) and axis(m, f) for m in pet for f in ("model_size", "pretrain_data")),
        ),
        (
            "6 critical data sizes",
            "two methods on the model-size axis with overlapping Df",
            sum(axis(m, "model_size") for m in METHODS) >= 2,
        ),
        (
            "7 PET generalises better zero-shot",
            "zero-shot scores of FMT and a PET method on >= 2 model sizes",
            c["full"]["zero_shot"] >= 2 and any(c[m]["zero_shot"] >= 2 for m in pet),
        ),
        ("(noise)", ">= 2 seeds per point for the seed noise the verdicts are judged against", seeds),
    ]


def format_plan(
    plan: StudyPlan,
    specs: list[tuple[RunSpec, Path]],
    basis: CostBasis,
    execution_text: str,
    sizes: dict[str, PlanEstimate] | None = None,
    size: str | None = None,
) -> str:
    """Return the printed plan (see the module docstring)."""
    from scaling_repro.launch.cost import CostAssumptions

    est = estimate(plan, specs, basis)
    if basis.tokens_per_example is None:
        tokens = f"training examples at {basis.source}"
    else:
        tokens = f"{basis.tokens_per_example:g} real tokens per training example ({basis.source})"
    lines = [
        f"Plan {plan.name}: {est.total_runs} finetuning runs, "
        f"{len(plan.models)} pretrained + {len(plan.hub_models)} hub base models; runs on {execution_text}",
        "",
        f"  {'recipe':<24} {'method':<7} {'runs':>5} {'GPU-h (est.)':>13}",
    ]
    for (recipe, kind), runs in est.runs.items():
        lines.append(f"  {recipe:<24} {kind:<7} {runs:>5} {est.hours[(recipe, kind)]:>13.2f}")
    if plan.models:
        lines.append(f"  {'pretraining':<24} {'':<7} {len(plan.models):>5} {est.pretrain_hours:>13.2f}")
    target = plan.targets.max_gpu_hours
    within = "" if target is None else f" ({'within' if est.total_hours <= target else 'OVER'} the {target:g} h target)"
    lines += [
        f"  {'total':<24} {'':<7} {est.total_runs:>5} {est.total_hours:>13.2f}{within}",
        "",
        f"GPU-hours are estimates (H100-hours), not measurements: the trainer's cost model at "
        f"{CostAssumptions().describe()}, {tokens}; "
        "test, decoding and zero-shot evaluation not counted.",
    ]
    if sizes:
        lines += ["", "Sizes (estimated H100-hours):"]
        lines += [
            f"  {name:<7} {e.total_runs:>5} runs {e.total_hours:>8.1f} h" + ("  <- this plan" if name == size else "")
            for name, e in sizes.items()
        ]
    lines += ["", "What each finding needs from the grid:"]
    for finding, need, met in finding_needs(grid_coverage(plan, specs)):
        lines.append(f"  [{'ok' if met else 'missing'}] {finding}: {need}")
    return "\n".join(lines)
