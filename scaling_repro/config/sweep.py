"""Recipe files to RunSpecs: the sweep's grid x zip expanded, each run validated, ids checked.

    runs = load_runs("recipes/tiny/fmt.yaml", ["train.max_steps=50", "method.kind=lora"])

Reading the file (``extends:``, overrides) is :mod:`scaling_repro.config.recipe_file`. A sweep
of more than ``MAX_SWEEP_RUNS`` runs is refused before any run is built. Every problem raises
:class:`~scaling_repro.errors.RecipeError` naming the file, the field path, the bad value and
what is allowed.
"""

from __future__ import annotations

import copy
import itertools
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scaling_repro.config.errors import format_validation_error, short_repr
from scaling_repro.config.recipe import RECIPE_KEYS, RunSpec, SweepConfig
from scaling_repro.config.recipe_file import apply_overrides, load_recipe_dict, set_path
from scaling_repro.errors import RecipeError

SECTIONS = ("task", "model", "method", "train", "eval", "launch")  # RunSpec fields that are sections
# Ten times the paper's whole grid; a larger sweep is split into recipes (each its own sweep folder).
MAX_SWEEP_RUNS = 200_000


@dataclass(frozen=True)
class Sweep:
    """An expanded recipe: its runs in recipe order and where it came from."""

    source: Path
    sweep: SweepConfig
    runs: tuple[RunSpec, ...]


def sweep_size(sweep: SweepConfig) -> int:
    """Return how many runs the sweep's grid x zip describes, without building them."""
    size = 1
    for values in sweep.grid.values():
        size *= len(values)
    for group in sweep.zip:
        size *= len(next(iter(group.values()))) if group else 0
    return size


def _combinations(sweep: SweepConfig) -> list[dict[str, Any]]:
    """Every assignment of axis path -> value, grid axes as a product with each zip group."""
    factors: list[list[dict[str, Any]]] = []
    for path, values in sweep.grid.items():
        factors.append([{path: v} for v in values])
    for group in sweep.zip:
        length = len(next(iter(group.values()))) if group else 0
        factors.append([{path: group[path][i] for path in group} for i in range(length)])
    combos = []
    for parts in itertools.product(*factors):
        combo: dict[str, Any] = {}
        for part in parts:
            overlap = combo.keys() & part.keys()
            if overlap:
                raise RecipeError(f"sweep: axis {sorted(overlap)[0]!r} appears more than once")
            combo.update(part)
        combos.append(combo)
    return combos


@dataclass
class _Sections:
    """Every distinct value of each section of a sweep's runs, validated once: runs with equal
    values share the instance (frozen), and with it the JSON their run ids hash."""

    fixed: dict[str, bytes | None]  # the image (_image) of each section that no axis sets
    validated: dict[tuple[str, bytes], Any] = field(default_factory=dict)

    def fill(self, run_data: dict[str, Any]) -> dict[str, tuple[str, bytes]]:
        """Put the validated instance of each section seen before into ``run_data``; return
        the keys of the others, to :meth:`remember` once the run has validated."""
        unknown = {}
        for name in SECTIONS:
            image = self.fixed[name] if name in self.fixed else _image(run_data, name)
            if image is None:
                continue
            if (name, image) in self.validated:
                run_data[name] = self.validated[name, image]
            else:
                unknown[name] = (name, image)
        return unknown

    def remember(self, spec: RunSpec, unknown: dict[str, tuple[str, bytes]]) -> None:
        """Keep the sections of ``spec`` that :meth:`fill` did not know."""
        self.validated.update({key: getattr(spec, name) for name, key in unknown.items()})


def _image(run_data: dict[str, Any], name: str) -> bytes | None:
    """Return what identifies the value of section ``name`` in ``run_data``: its pickle (equal
    pickles, equal values of equal types), empty when the section is left out (its default), or
    None when it cannot be pickled (such a section is validated in every run)."""
    if name not in run_data:
        return b""
    try:
        return pickle.dumps(run_data[name])
    except (pickle.PicklingError, TypeError, AttributeError):
        return None


def _is_held_out(combo: dict[str, Any], holdout: dict[str, list[Any]]) -> bool:
    return any(path in combo and combo[path] in values for path, values in holdout.items())


def expand(data: dict[str, Any], source: str | Path = "<recipe>") -> Sweep:
    """Return the validated runs of a raw recipe mapping (after extends and overrides)."""
    source = Path(source)
    data = copy.deepcopy(data)
    data.pop("extends", None)
    unknown = sorted(set(data) - set(RECIPE_KEYS))
    if unknown:
        raise RecipeError(
            f"{source}: {unknown[0]}: unknown section (got {short_repr(data[unknown[0]])}); "
            f"allowed: {', '.join(RECIPE_KEYS)}"
        )
    try:
        sweep = SweepConfig.model_validate(data.pop("sweep", None) or {})
    except ValidationError as err:
        raise RecipeError(format_validation_error(err, source, prefix="sweep")) from None
    for path in [*sweep.grid, *(p for g in sweep.zip for p in g)]:
        if path.split(".")[0] not in RECIPE_KEYS or path.startswith("sweep"):
            raise RecipeError(
                f"{source}: sweep axis {path!r}: must start with one of "
                f"{', '.join(k for k in RECIPE_KEYS if k != 'sweep')}"
            )
    size = sweep_size(sweep)
    if size > MAX_SWEEP_RUNS:
        raise RecipeError(
            f"{source}: sweep: {size:,} runs; allowed: at most {MAX_SWEEP_RUNS:,} per recipe "
            "(split the grid into several recipes)"
        )
    touched = {path.split(".")[0] for path in [*sweep.grid, *(p for g in sweep.zip for p in g)]}
    sections = _Sections({name: _image(data, name) for name in SECTIONS if name not in touched})
    runs = []
    for index, combo in enumerate(_combinations(sweep)):
        run_data = dict(data)  # each axis copies only the mappings on its path
        for path, value in combo.items():
            set_path(run_data, path, value, copy_on_write=True)
        run_data.update(index=index, held_out=_is_held_out(combo, sweep.holdout))
        new_sections = sections.fill(run_data)
        try:
            spec = RunSpec.model_validate(run_data)
        except ValidationError as err:
            where = ", ".join(f"{p}={short_repr(v)}" for p, v in combo.items())
            context = f" (sweep run {index}: {where})" if combo else ""
            raise RecipeError(format_validation_error(err, source) + context) from None
        sections.remember(spec, new_sections)
        runs.append(spec)
    seen: dict[str, int] = {}
    for run in runs:
        if run.run_id in seen:
            raise RecipeError(
                f"{source}: sweep runs {seen[run.run_id]} and {run.index} are the same run "
                f"(id {run.run_id}): an axis changes nothing that determines the result"
            )
        seen[run.run_id] = run.index
    return Sweep(source=source, sweep=sweep, runs=tuple(runs))


def load_runs(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Sweep:
    """Return the expanded, validated sweep of a recipe file with ``key=value`` overrides."""
    data = apply_overrides(load_recipe_dict(path), list(overrides))
    return expand(data, path)


def select_run(sweep: Sweep, index: int | None = None, run_id: str | None = None) -> RunSpec:
    """Return one run of a sweep by index or id; a single-run recipe needs neither."""
    if run_id is not None:
        for run in sweep.runs:
            if run.run_id == run_id:
                return run
        raise RecipeError(f"{sweep.source}: no run with id {run_id!r} in this recipe")
    if index is None:
        if len(sweep.runs) == 1:
            return sweep.runs[0]
        raise RecipeError(
            f"{sweep.source}: the recipe has {len(sweep.runs)} runs; choose one with "
            f"--index 0..{len(sweep.runs) - 1} or --run-id (see `scaling-repro validate`)"
        )
    if not 0 <= index < len(sweep.runs):
        raise RecipeError(f"{sweep.source}: --index {index} out of range 0..{len(sweep.runs) - 1}")
    return sweep.runs[index]
