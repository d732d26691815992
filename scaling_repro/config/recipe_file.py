"""A recipe file as a mapping: YAML read through the bounded safe loader, ``extends:``
merged (each file read once per load), and ``key.path=value`` overrides applied.

    data = apply_overrides(load_recipe_dict("recipes/tiny/fmt.yaml"), ["train.max_steps=50"])

Overrides are ``key.path=value`` with the value parsed as YAML and typed later by the schema.
An override of a path that is also a sweep axis pins that axis to the given value (so
``model.name=tiny-s`` runs only the tiny-s part of a model-size sweep). Every problem raises
:class:`~scaling_repro.errors.RecipeError` naming the file, the field path, the bad value and
what is allowed; :mod:`scaling_repro.config.sweep` turns the mapping into RunSpecs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from scaling_repro.config.errors import short_repr
from scaling_repro.config.recipe import RECIPE_KEYS
from scaling_repro.config.yaml_load import YamlLimitError, describe_yaml_error, load_yaml
from scaling_repro.errors import RecipeError

MAX_EXTENDS_DEPTH = 16
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


def set_path(data: dict[str, Any], path: str, value: Any, copy_on_write: bool = False) -> None:
    """Set ``data[a][b][c] = value`` for path ``a.b.c``, creating mappings on the way. With
    ``copy_on_write`` the mappings along the path are copied before they change, so ``data``
    (a shallow copy) may share everything else with the mapping it was copied from."""
    node = data
    parts = path.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise RecipeError(f"{path}: {where} is {short_repr(child)}, not a section with fields")
        if copy_on_write:
            child = node[part] = dict(child)
        node = child
    node[parts[-1]] = copy_yaml_value(value)


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


def copy_yaml_value(value: Any) -> Any:
    """Return a deep copy of a value read from YAML: its mappings and lists copied, its strings
    and numbers (immutable) shared, which is far quicker than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {key: copy_yaml_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_yaml_value(item) for item in value]
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    return copy.deepcopy(value)
