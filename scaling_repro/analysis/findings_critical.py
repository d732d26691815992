"""Finding 6: PET is better at small Df and FMT at large Df, and where the switch moves with model size.

The paper (Sec. 5, Fig. 5) reads the critical data size off the fitted joint laws: with few
examples PET is better, with millions FMT, and the value is task dependent. Per PET method, on
the fitted model-size laws (:func:`scaling_repro.analysis.crossing.overtaking_size`), the Df at
which FMT overtakes it counts only where it was measured:

- **in range**: between the smallest and the largest Df either method was run at;
- **extrapolated**: up to one grid step above the largest (labelled so, still a switch);
- **below**: under the smallest measured Df (FMT better throughout what was measured): no switch;
- **beyond**: further above (PET better throughout, e.g. En-De FMT vs LoRA in Table 4): no switch.

Two verdicts, each on ``(1 + level) / 2`` of the bootstrap replicates:

- **the switch** (the finding's verdict): at the smallest model that learns the task, some PET
  method switches to FMT (in range or extrapolated); not reproduced when no PET method does;
- **moves up with model size** (a sub-verdict): the overtaking Df at the largest learning model
  exceeds that at the smallest (beyond = larger still); a task where it moves down says so. Table
  4 shows it moving up for En-De and En-Zh; on MLSum FMT overtakes Prompt at 38 -> 12 -> 3.7 ->
  1.3 -> 0 examples from 1B to 16B, all below the measured range, so there is no switch.

Models whose loss is flat in Df for every method (they do not learn the task) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scaling_repro.analysis import crossing
from scaling_repro.analysis.experiments import METHOD_NAMES
from scaling_repro.analysis.paired import decide
from scaling_repro.analysis.reproduction import StudyAnalysis
from scaling_repro.analysis.verdicts import Finding, Verdict
from scaling_repro.config.recipe import PET_METHODS
from scaling_repro.fit import LawFit

CLAIM = (
    "The critical data size between methods is task-dependent; few thousand examples -> PET, a bit more -> "
    "LoRA, millions -> FMT."
)


Place = str  # "below", "in range", "extrapolated", "beyond"


def measured_range(full: LawFit, pet: LawFit) -> tuple[float, float, float]:
    """Return (smallest measured Df, largest, one grid step above the largest) of two methods' points."""
    sizes = np.unique([p.data_size for fit in (full, pet) for p in fit.points])
    step = sizes[-1] / sizes[-2] if len(sizes) > 1 else 1.0
    return float(sizes[0]), float(sizes[-1]), float(sizes[-1] * step)


def place(sizes: np.ndarray, bounds: tuple[float, float, float]) -> np.ndarray:
    """Return where each overtaking size lies relative to the measured range (see the module docstring)."""
    low, high, step = bounds
    return np.select(
        [sizes < low, sizes <= high, sizes <= step], ["below", "in range", "extrapolated"], default="beyond"
    )


def _switch(places: np.ndarray, level: float) -> str:
    """'switch' / 'no switch' when that holds in >= (1 + level) / 2 of the replicates, else 'unclear'."""
    share = float(np.mean((places == "in range") | (places == "extrapolated")))
    need = (1.0 + level) / 2.0
    return "switch" if share >= need else "no switch" if 1.0 - share >= need else "unclear"


def _shown(size: float, where: str) -> str:
    text = crossing.shown(size)
    return text if where == "in range" or text in ("never", "FMT better throughout") else f"{text} ({where})"


def _verdicts(switches: Sequence[str], moves: Sequence[str]) -> tuple[Verdict, Verdict]:
    """Return (the switch verdict, the moves-up sub-verdict) from per-method states."""
    if not switches:
        return "not testable", "not testable"
    switch: Verdict = (
        "reproduced"
        if "switch" in switches
        else "not reproduced"
        if all(s == "no switch" for s in switches)
        else "inconclusive"
    )
    if not moves:
        return switch, "not testable"
    move: Verdict = "not reproduced" if "less" in moves else "reproduced" if "greater" in moves else "inconclusive"
    return switch, move


def finding_6(analysis: StudyAnalysis) -> Finding:
    """Return finding 6: per PET method, a PET -> FMT switch within the measured Df range at the smallest
    learning model, and whether it moves to larger Df at the largest (see the module docstring)."""
    level = analysis.settings.level
    need = (1.0 + level) / 2.0
    learning, flat = crossing.learning_models(analysis.checks, analysis.settings.noise_sigmas)
    params = {c.model: c.model_params for c in analysis.checks.critical}
    models = [m for m in learning if m in params]
    evidence = [f"left out, loss flat in Df for every method: {', '.join(flat)}"] if flat else []
    pets = [m for m in PET_METHODS if m in analysis.methods]
    criterion = (
        f"per PET method, on the fitted model-size laws: at the smallest learning model FMT overtakes it within "
        f"the measured Df range (or up to one grid step above it, labelled extrapolated; below the smallest "
        f"measured Df does not count) in >= {need:.0%} of the bootstrap replicates; sub-verdict 'moves up': the "
        f"overtaking Df is larger at the largest learning model in >= {need:.0%} of the paired replicates "
        "('not reproduced' where it is smaller as often); models that do not learn the task are left out"
    )
    if "full" not in analysis.methods or not pets or len(models) < 2:
        evidence.append("needs FMT, a PET method and >= 2 model sizes that learn the task")
        return Finding(number=6, claim=CLAIM, criterion=criterion, verdict="not testable", evidence=evidence)
    full = analysis.methods["full"].multiplicative.fits["model_size"]
    switches, moves = [], []
    for method in pets:
        pet = analysis.methods[method].multiplicative.fits["model_size"]
        bounds = measured_range(full, pet)
        name = f"FMT vs {METHOD_NAMES[method]}"
        point = [
            float(crossing.overtaking_size(crossing.params_of(full), crossing.params_of(pet), params[m])[0])
            for m in models
        ]
        by_model = ", ".join(f"{m}: {_shown(s, str(place(np.array([s]), bounds)[0]))}" for m, s in zip(models, point))
        measured = f"measured Df {bounds[0]:.2g}-{bounds[1]:.2g}"
        reps_full, reps_pet = crossing.replicate_params(full), crossing.replicate_params(pet)
        if reps_full is None or reps_pet is None:
            switches.append("unclear")
            evidence.append(f"{name}: FMT overtakes at {by_model} ({measured}; no bootstrap replicates) -> unclear")
            continue
        n = min(len(reps_full["A"]), len(reps_pet["A"]))
        reps_full, reps_pet = ({k: v[:n] for k, v in r.items()} for r in (reps_full, reps_pet))
        small = crossing.overtaking_size(reps_full, reps_pet, params[models[0]])
        large = crossing.overtaking_size(reps_full, reps_pet, params[models[-1]])
        places = place(small, bounds)
        switch = _switch(places, level)
        switches.append(switch)
        shares = ", ".join(f"{p} {np.mean(places == p):.0%}" for p in ("below", "in range", "extrapolated", "beyond"))
        line = f"{name}: FMT overtakes at {by_model} ({measured}); at {models[0]}, of {n} replicates: {shares}"
        line += f" -> {switch}"
        if switch == "switch":
            moves.append(decide(large, small, level))
            word = {"greater": "moves up", "less": "moves down", "undecided": "undecided"}[moves[-1]]
            line += (
                f"; {models[-1]} vs {models[0]}: larger in {np.mean(large > small):.0%}, smaller in "
                f"{np.mean(large < small):.0%} -> {word}"
            )
        evidence.append(line)
    switch_verdict, move_verdict = _verdicts(switches, moves)
    return Finding(
        number=6,
        claim=CLAIM,
        criterion=criterion,
        verdict=switch_verdict,
        evidence=evidence,
        parts={"the switch moves up with model size": move_verdict},
    )
