"""Finding 6: a PET -> FMT switch exists, and it moves to larger Df as the model grows.

The paper (Sec. 5, Fig. 5) finds the critical data size by extrapolating the fitted joint laws:
with few examples PET is better, with millions FMT, and the value is task dependent. Table 4's
own laws show the trend for En-De FMT vs Prompt: FMT overtakes Prompt at 2.4e5 examples on the
1B model, 3.6e5 on 2B, 2.0e6 on 4B and never on 8B / 16B. So, per PET method, on the fitted
model-size laws (:func:`scaling_repro.analysis.crossing.overtaking_size`):

- **switch**: at the smallest model that learns the task, FMT overtakes the PET method at a
  finite Df, with the PET method better below it, in at least ``(1 + level) / 2`` of the
  bootstrap replicates; "no switch" when the opposite holds as often;
- **moves up**: the overtaking size at the largest learning model exceeds that at the smallest
  (never overtaking counts as infinitely large) in at least ``(1 + level) / 2`` of the paired
  replicates; "moves down" when it is smaller as often.

Reproduced when some PET method has a switch that moves up and none has one that moves down;
not reproduced when a switch moves down or no PET method has a switch. Models whose loss is flat
in Df for every method (they do not learn the task) are left out.
"""

from __future__ import annotations

import numpy as np

from scaling_repro.analysis import crossing
from scaling_repro.analysis.experiments import METHOD_NAMES
from scaling_repro.analysis.paired import decide
from scaling_repro.analysis.reproduction import StudyAnalysis
from scaling_repro.analysis.verdicts import Finding, Verdict
from scaling_repro.config.recipe import PET_METHODS

CLAIM = (
    "The critical data size between methods is task-dependent; few thousand examples -> PET, a bit more -> "
    "LoRA, millions -> FMT."
)


def _switch(sizes: np.ndarray, level: float) -> str:
    """'switch' / 'no switch' when that holds in >= (1 + level) / 2 of the replicates, else 'unclear'."""
    share = float(np.mean((sizes > 0) & np.isfinite(sizes)))
    need = (1.0 + level) / 2.0
    return "switch" if share >= need else "no switch" if 1.0 - share >= need else "unclear"


def _pair_state(switch: str, moves: str) -> str:
    if switch == "switch":
        return {"greater": "agree", "less": "contra"}.get(moves, "unclear")
    return "no switch" if switch == "no switch" else "unclear"


def _verdict(states: list[str]) -> Verdict:
    if not states:
        return "not testable"
    if "contra" in states or all(s == "no switch" for s in states):
        return "not reproduced"
    if "agree" in states:
        return "reproduced"
    return "inconclusive"


def finding_6(analysis: StudyAnalysis) -> Finding:
    """Return finding 6: per PET method, a PET -> FMT switch at the smallest learning model that moves
    to larger Df at the largest (see the module docstring)."""
    level = analysis.settings.level
    learning, flat = crossing.learning_models(analysis.checks, analysis.settings.noise_sigmas)
    params = {c.model: c.model_params for c in analysis.checks.critical}
    models = [m for m in learning if m in params]
    evidence = [f"left out, loss flat in Df for every method: {', '.join(flat)}"] if flat else []
    pets = [m for m in PET_METHODS if m in analysis.methods]
    criterion = (
        f"per PET method, on the fitted model-size laws: FMT overtakes it at a finite Df at the smallest "
        f"learning model (switch), and the overtaking Df is larger at the largest learning model (never = "
        f"infinite), each in >= {(1 + level) / 2:.0%} of the paired bootstrap replicates; models that do not "
        f"learn the task are left out; Df searched in [{crossing.SEARCH[0]:g}, {crossing.SEARCH[1]:g}]"
    )
    if "full" not in analysis.methods or not pets or len(models) < 2:
        evidence.append("needs FMT, a PET method and >= 2 model sizes that learn the task")
        return Finding(number=6, claim=CLAIM, criterion=criterion, verdict="not testable", evidence=evidence)
    full = analysis.methods["full"].multiplicative.fits["model_size"]
    states = []
    for method in pets:
        pet = analysis.methods[method].multiplicative.fits["model_size"]
        name = f"FMT vs {METHOD_NAMES[method]}"
        point = [
            float(crossing.overtaking_size(crossing.params_of(full), crossing.params_of(pet), params[m])[0])
            for m in models
        ]
        by_model = ", ".join(f"{m}: {crossing.shown(s)}" for m, s in zip(models, point))
        reps_full, reps_pet = crossing.replicate_params(full), crossing.replicate_params(pet)
        if reps_full is None or reps_pet is None:
            states.append("unclear")
            evidence.append(f"{name}: FMT overtakes at {by_model} (no bootstrap replicates) -> unclear")
            continue
        n = min(len(reps_full["A"]), len(reps_pet["A"]))
        reps_full, reps_pet = ({k: v[:n] for k, v in r.items()} for r in (reps_full, reps_pet))
        small = crossing.overtaking_size(reps_full, reps_pet, params[models[0]])
        large = crossing.overtaking_size(reps_full, reps_pet, params[models[-1]])
        switch, moves = _switch(small, level), decide(large, small, level)
        states.append(_pair_state(switch, moves))
        evidence.append(
            f"{name}: FMT overtakes at {by_model}; at {models[0]}: {switch} "
            f"({np.mean((small > 0) & np.isfinite(small)):.0%} of {n} replicates); {models[-1]} vs {models[0]}: "
            f"larger in {np.mean(large > small):.0%}, smaller in {np.mean(large < small):.0%} -> {states[-1]}"
        )
    return Finding(number=6, claim=CLAIM, criterion=criterion, verdict=_verdict(states), evidence=evidence)
