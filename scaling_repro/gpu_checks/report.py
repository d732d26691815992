"""The report of a check run: ``gpu.md`` and ``gpu.json`` under ``--out``, both rewritten
atomically after every row, so a crash, a kill or an out-of-memory loses at most the row
being measured.

A row is one check: its name, a status and its figures. Statuses:
``ok`` (measured, and what it checks holds), ``FAIL: why`` (measured, and it does not hold),
``skipped: why`` (cannot run here, e.g. ``skipped: needs CUDA``), ``error: message`` (the
check raised; the run went on with the next one).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scaling_repro.fileio import atomic_write_text

MARKDOWN_FILE = "gpu.md"
JSON_FILE = "gpu.json"
EXTRA_PACKAGES = ("flash_attn", "flash-attn", "tokenizers", "safetensors", "numpy")


@dataclass(frozen=True)
class Row:
    """One check's outcome."""

    name: str
    status: str
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None

    @property
    def errored(self) -> bool:
        """Return whether the check raised instead of measuring."""
        return self.status.startswith("error")


def environment() -> dict[str, Any]:
    """Return the device (with CUDA and cuDNN versions), package versions, Python and git
    commit of this process."""
    from importlib import metadata

    from scaling_repro.pipeline import environment as run_environment

    env = run_environment()
    for name in EXTRA_PACKAGES:
        try:
            env["packages"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    env["python"] = sys.version.split()[0]
    import torch

    if torch.cuda.is_available():
        env["hardware"]["cuda"] = torch.version.cuda
        env["hardware"]["cudnn"] = torch.backends.cudnn.version()
        env["hardware"]["gpu_memory_GiB"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return env


@dataclass
class Report:
    """Rows written to ``out/gpu.md`` and ``out/gpu.json`` as they come."""

    out: Path
    mode: str  # "gpu" or "smoke"
    env: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def add(self, row: Row) -> None:
        """Append ``row`` and rewrite both files."""
        self.rows.append(row)
        self.write()

    def write(self) -> None:
        """Write both files atomically (each replaces the previous version whole)."""
        self.out.mkdir(parents=True, exist_ok=True)
        data = {
            "mode": self.mode,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "elapsed_seconds": round(time.time() - self.started, 1),
            **self.env,
            "rows": [asdict(row) for row in self.rows],
        }
        atomic_write_text(self.out / JSON_FILE, json.dumps(data, indent=1, default=str) + "\n")
        atomic_write_text(self.out / MARKDOWN_FILE, markdown(data))


def show(value: Any) -> str:
    """Return a figure as the report prints it."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {show(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(show(v) for v in value)
    return str(value)


def markdown(data: dict[str, Any]) -> str:
    """Return the report as markdown: environment, then one table line per row."""
    hardware, packages = data.get("hardware", {}), data.get("packages", {})
    device = hardware.get("gpu", "cpu")
    lines = [
        "# GPU check",
        "",
        f"Written by `python scripts/gpu_check.py{' --smoke' if data['mode'] == 'smoke' else ''}` "
        f"({data['mode']} sizes), started {data['started']}, {data['elapsed_seconds']:.0f} s so far.",
        "",
        f"Device: {device}{_cuda(hardware)}; platform {hardware.get('platform', '?')}; "
        f"Python {data.get('python', '?')}; git commit {data.get('git_commit') or 'unknown'}.",
        "",
        "Packages: " + ", ".join(f"{name} {version}" for name, version in packages.items()) + ".",
        "",
        "| check | status | figures | seconds |",
        "|---|---|---|---|",
    ]
    for row in data["rows"]:
        figures = "; ".join(f"{key} {show(value)}" for key, value in row["figures"].items())
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f}"
        lines.append(f"| {row['name']} | {_cell(row['status'])} | {_cell(figures)} | {seconds} |")
    return "\n".join(lines) + "\n"


def _cuda(hardware: dict[str, Any]) -> str:
    if "cuda" not in hardware:
        return ""
    return f" ({hardware.get('gpu_memory_GiB')} GiB, CUDA {hardware['cuda']}, cuDNN {hardware.get('cudnn')})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
