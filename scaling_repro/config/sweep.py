"""Recipe files to RunSpecs: YAML loading with ``extends:``, dotted overrides, sweep expansion.

    runs = load_runs("recipes/tiny/fmt.yaml", ["train.max_steps=50", "method.kind=lora"])

Overrides are ``key.path=value`` with the value parsed as YAML and typed by the schema.
An override of a path that is also a sweep axis pins that axis to the given value (so
``model.name=tiny-s`` runs only the tiny-s part of a model-size sweep). Every problem raises
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

import yaml
from pydantic import ValidationError

from scaling_repro.config.errors import format_validation_error, short_repr
from scaling_repro.config.recipe import RECIPE_KEYS, RunSpec, SweepConfig
from scaling_repro.config.yaml_load import YamlLimitError, describe_yaml_error, load_yaml
from scaling_repro.errors import RecipeError

MAX_EXTENDS_DEPTH = 16
SECTIONS = ("task", "model", "method", "train", "eval", "launch")  # RunSpec fields that are sections
MAX_EXTENDS_PER_FILE = 64
MAX_YAML_BYTES = 4 * 1024 * 1024


def read_yaml(path: Path) -> dict[str, Any]:
    """Return the mapping in one YAML file, or raise RecipeError in one line that names the file.

    The file is parsed by :func:`~scaling_repro.config.yaml_load.load_yaml` (safe, bounded
    aliases and nesting, no duplicate keys). Errors never quote the file's text: it may be
    something that is not a recipe at all.
    """
    if path.is_dir():
        raise RecipeError(f"{path}: is a folder; allowed: a YAML recipe file")
    if not path.exists():
        raise RecipeError(f"{path}: recipe file not found")
    if not path.is_file():
        raise RecipeError(f"{path}: not a regular file; allowed: a YAML recipe file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_YAML_BYTES + 1)
    except OSError as err:
        raise RecipeError(f"{path}: cannot read ({err.strerror or type(err).__name__})") from None
    if len(raw) > MAX_YAML_BYTES:
        raise RecipeError(f"{path}: larger than {MAX_YAML_BYTES // 2**20} MiB; allowed: a recipe under that size")
    try:
        data = load_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise RecipeError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except YamlLimitError as err:
        raise RecipeError(f"{path}: {describe_yaml_error(err)}") from None
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: YAML syntax error at {describe_yaml_error(err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: not a YAML mapping (a {type(data).__name__}); a recipe is a mapping of sections")
    return data


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``update``: mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_recipe_dict(path: str | Path) -> dict[str, Any]:
    """Return the raw recipe mapping of ``path`` with its ``extends:`` chain merged in.

    ``extends`` is a path (or list of paths) relative to the extending file; later files win.
    Each file is read once per call however many files extend it; a cycle is an error.
    """
    return _load_extended(Path(path), (), {})


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: read_yaml reports the file
        return path.absolute()


def _load_extended(path: Path, chain: tuple[Path, ...], loaded: dict[Path, dict[str, Any]]) -> dict[str, Any]:
    """Return ``path``'s mapping merged over its parents; ``chain`` holds the files that extend
    it (to find cycles), ``loaded`` the merged mapping of each file already read in this load."""
    key = _resolved(path)
    if key in loaded:
        return loaded[key]
    if key in chain:
        cycle = " -> ".join(p.name for p in (*chain[chain.index(key) :], key))
        raise RecipeError(f"{path}: extends: cycle {cycle}; allowed: a chain of files that ends")
    if len(chain) > MAX_EXTENDS_DEPTH:
        raise RecipeError(f"{path}: extends: chain deeper than {MAX_EXTENDS_DEPTH}; allowed: at most that many")
    data = read_yaml(path)
    parents = data.pop("extends", None)
    if parents is not None:
        if isinstance(parents, str):
            parents = [parents]
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            raise RecipeError(f"{path}: extends: must be a path or a list of paths, got {short_repr(parents)}")
        if len(parents) > MAX_EXTENDS_PER_FILE:
            raise RecipeError(f"{path}: extends: lists {len(parents)} files; allowed: at most {MAX_EXTENDS_PER_FILE}")
        merged: dict[str, Any] = {}
        for parent in parents:
            merged = deep_merge(merged, _load_extended(path.parent / parent, (*chain, key), loaded))
        data = deep_merge(merged, data)
    loaded[key] = data
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key.path=value`` into the path and the YAML-parsed value."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise RecipeError(f"override {text!r}: expected key.path=value, e.g. train.max_steps=100")
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise RecipeError(f"override {short_repr(text)}: value is not valid YAML: {describe_yaml_error(err)}") from None
    return key, value


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for path ``a.b.c``, creating mappings on the way."""
    node = data
    parts = path.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise RecipeError(f"{path}: {where} is {child!r}, not a section with fields")
        node = child
    node[parts[-1]] = _copied(value)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return the recipe mapping with each ``key.path=value`` override applied in order."""
    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        if path.split(".")[0] not in RECIPE_KEYS:
            raise RecipeError(
                f"override {text!r}: unknown section {path.split('.')[0]!r}; allowed: {', '.join(RECIPE_KEYS)}"
            )
        if path.startswith("sweep.grid.") or path.startswith("sweep.holdout."):
            section, _, axis = path[len("sweep.") :].partition(".")
            data.setdefault("sweep", {}).setdefault(section, {})[axis] = value
        elif not _pin_axis(data.get("sweep") or {}, path, value, text):
            set_path(data, path, value)
    return data


def _pin_axis(sweep: dict[str, Any], path: str, value: Any, text: str) -> bool:
    """Restrict a sweep axis named ``path`` to ``value``; return whether it was an axis."""
    grid = sweep.get("grid") or {}
    axes = [*(grid if isinstance(grid, dict) else {})]
    axes += [axis for group in sweep.get("zip") or [] if isinstance(group, dict) for axis in group]
    for axis in axes:
        if path.startswith(axis + "."):
            raise RecipeError(
                f"override {text!r}: the sweep sets {axis!r} as a whole, which would replace "
                f"this override; override the axis instead (sweep.grid.{axis}=[...])"
            )
    if isinstance(grid, dict) and path in grid:
        grid[path] = [value]
        return True
    for group in sweep.get("zip") or []:
        if isinstance(group, dict) and path in group:
            keep = [i for i, v in enumerate(group[path]) if v == value]
            if not keep:
                raise RecipeError(
                    f"override {text!r}: {path} is a zip axis of the sweep; allowed values: "
                    f"{', '.join(map(repr, group[path]))}"
                )
            for axis in group:
                group[axis] = [group[axis][i] for i in keep]
            return True
    return False


@dataclass(frozen=True)
class Sweep:
    """An expanded recipe: its runs in recipe order and where it came from."""

    source: Path
    sweep: SweepConfig
    runs: tuple[RunSpec, ...]


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


def _copied(value: Any) -> Any:
    """Return a deep copy of a value read from YAML: its mappings and lists copied, its strings
    and numbers (immutable) shared, which is far quicker than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    return copy.deepcopy(value)


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
            f"{source}: {unknown[0]}: unknown section (got {data[unknown[0]]!r}); allowed: {', '.join(RECIPE_KEYS)}"
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
    touched = {path.split(".")[0] for path in [*sweep.grid, *(p for g in sweep.zip for p in g)]}
    sections = _Sections({name: _image(data, name) for name in SECTIONS if name not in touched})
    runs = []
    for index, combo in enumerate(_combinations(sweep)):
        run_data = {key: _copied(value) if key in touched else value for key, value in data.items()}
        for path, value in combo.items():
            set_path(run_data, path, value)
        run_data.update(index=index, held_out=_is_held_out(combo, sweep.holdout))
        new_sections = sections.fill(run_data)
        try:
            spec = RunSpec.model_validate(run_data)
        except ValidationError as err:
            where = ", ".join(f"{p}={v!r}" for p, v in combo.items())
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
