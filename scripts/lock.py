"""The locked environment: check that the lock agrees with pyproject.toml, or refresh it.

    python scripts/lock.py check      # exit 1, one line per disagreement, if they disagree
    python scripts/lock.py refresh    # re-resolve from PyPI in a throwaway venv (~2 min)

Two files in requirements/ are the lock, both pip constraints files of exact versions:

- ``lock.txt``: every package except torch and the packages only torch needs. It fits any
  torch in pyproject's range, so a GPU user keeps the CUDA build their cluster provides.
- ``lock-cpu.txt``: ``lock.txt`` plus the CPU torch the tests run on (and torch's own
  dependencies). The README's two commands and CI install with it.

``refresh`` installs ``torch==TORCH`` (see below), then the project with every extra that is
locked, with no constraints, and writes what pip resolved. Run ``check`` and the tests after.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "lock.txt"
LOCK_CPU = ROOT / "requirements" / "lock-cpu.txt"
TORCH = "2.13.0"  # the CPU wheel the test machines carry
# Extras resolved into the lock. `dev` carries DeepSpeed for the ZeRO tests on CPU (its sdist
# builds no ops there); a GPU cluster installs its own build against its CUDA toolkit
# (`pip install --no-build-isolation 'deepspeed>=0.16.4'`), which the lock does not pin.
LOCKED_EXTRAS = ("dev", "slurm")
HEADER = """\
# {what}
# Exact versions the test suite passes with. Do not edit by hand: `python scripts/lock.py refresh`
# rewrites this file, `python scripts/lock.py check` says where it disagrees with pyproject.toml.
"""


def read_pins(path: Path) -> dict[str, Version]:
    """Return ``{canonical name: version}`` of a constraints file, following ``-c`` includes."""
    pins: dict[str, Version] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-c "):
            pins.update(read_pins(path.parent / line[3:].strip()))
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise ValueError(f"{path}: {raw!r} is not an exact pin (name==version)")
        pins[canonicalize_name(name)] = Version(version)
    return pins


def project_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[tuple[Requirement, str]]:
    """Return every direct requirement of the project with where it comes from ("dependencies"
    or "extra NAME")."""
    project = tomllib.loads(pyproject.read_text())["project"]
    found = [(Requirement(text), "dependencies") for text in project["dependencies"]]
    for extra, texts in project.get("optional-dependencies", {}).items():
        found += [(Requirement(text), f"extra {extra}") for text in texts]
    return found


def disagreements(pins: dict[str, Version], requirements: list[tuple[Requirement, str]]) -> list[str]:
    """Return one line per locked requirement that the lock leaves out or pins outside its range."""
    problems = []
    for requirement, origin in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        if origin.startswith("extra ") and origin[6:] not in LOCKED_EXTRAS:
            continue
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement.name} ({origin}, {requirement.specifier}) is not in the lock")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(
                f"{requirement.name}=={pins[name]} in the lock is outside pyproject's "
                f"{requirement.specifier} ({origin})"
            )
    return problems


def check(lock_cpu: Path = LOCK_CPU) -> int:
    """Print each disagreement between the lock and pyproject.toml; return 1 if any, else 0."""
    problems = disagreements(read_pins(lock_cpu), project_requirements())
    for problem in problems:
        print(f"lock disagrees with pyproject.toml: {problem}")
    if not problems:
        print(f"{lock_cpu.relative_to(ROOT)} agrees with pyproject.toml")
    return 1 if problems else 0


_DEPENDENCY_GRAPH = """
import json, re
from importlib.metadata import distributions
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
graph = {}
for dist in distributions():
    needs = []
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            needs.append(canonicalize_name(req.name))
    graph[canonicalize_name(dist.metadata["Name"])] = {"version": dist.version, "needs": needs}
print(json.dumps(graph))
"""


def torch_only(graph: dict[str, dict]) -> set[str]:
    """Return torch and the installed packages that nothing but torch (transitively) needs."""
    reached_without_torch: set[str] = set()
    roots = {name for name in graph if not any(name in node["needs"] for node in graph.values())}
    stack = [name for name in roots if name != "torch"]
    while stack:
        name = stack.pop()
        if name in reached_without_torch or name == "torch" or name not in graph:
            continue
        reached_without_torch.add(name)
        stack.extend(graph[name]["needs"])
    return set(graph) - reached_without_torch


def refresh() -> int:
    """Re-resolve the lock from PyPI in a throwaway venv and rewrite both files; return 0."""
    with tempfile.TemporaryDirectory() as tmp:
        python = Path(tmp) / "venv" / "bin" / "python"
        subprocess.run([sys.executable, "-m", "venv", str(python.parent.parent)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, f"torch=={TORCH}"], check=True)
        subprocess.run([*pip, "-e", f"{ROOT}[{','.join(LOCKED_EXTRAS)}]"], check=True)
        graph = json.loads(
            subprocess.run([str(python), "-c", _DEPENDENCY_GRAPH], check=True, capture_output=True, text=True).stdout
        )
    skip = {"scaling-repro", "pip"}
    cpu_only = torch_only({k: v for k, v in graph.items() if k not in skip})
    pins = {name: node["version"].split("+")[0] for name, node in graph.items() if name not in skip}
    LOCK.write_text(
        HEADER.format(what="Lock for any torch: install with `pip install -c requirements/lock.txt -e .`")
        + "".join(f"{name}=={pins[name]}\n" for name in sorted(pins) if name not in cpu_only)
    )
    LOCK_CPU.write_text(
        HEADER.format(what="Lock with the CPU torch the tests run on (the README's commands, CI)")
        + "-c lock.txt\n"
        + "".join(f"{name}=={pins[name]}\n" for name in sorted(cpu_only))
    )
    print(
        f"wrote {LOCK.relative_to(ROOT)} ({len(pins) - len(cpu_only)} pins) and "
        f"{LOCK_CPU.relative_to(ROOT)} ({len(cpu_only)} pins)"
    )
    return check()


def main(argv: list[str] | None = None) -> int:
    """Run ``check`` or ``refresh``; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["check", "refresh"])
    parser.add_argument("--lock", type=Path, default=LOCK_CPU, help="lock file to check (default: %(default)s)")
    args = parser.parse_args(argv)
    return check(args.lock.resolve()) if args.command == "check" else refresh()


if __name__ == "__main__":
    sys.exit(main())
