"""Score a finished run's saved generations again (e.g. with a metric added later), without
the model: ``generations.jsonl`` rows -> the RunRecord's ``metrics``/``zero_shot``/``few_shot``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from scaling_repro.errors import UserError
from scaling_repro.evaluate.metrics import BleurtFn, Generations, score_sets
from scaling_repro.evaluate.run import GENERATIONS_FILE, with_direction_mean


def read_generations(run_dir: str | Path) -> list[dict[str, Any]]:
    """Return the rows of ``run_dir/generations.jsonl``; UserError when it is missing or bad."""
    path = Path(run_dir) / GENERATIONS_FILE
    if not path.is_file():
        raise UserError(f"{path} does not exist: the run was evaluated without generation (eval.generate=false) "
                        "or before generations were saved; re-run the evaluation with the model instead")
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise UserError(f"{path} line {err.lineno}: not JSON ({err.msg})") from err


def rescore(rows: Sequence[dict[str, Any]], metrics: Sequence[str], bleurt: BleurtFn | None = None) -> dict[str, Any]:
    """Return ``{"metrics", "zero_shot", "few_shot"}`` computed from generation rows, keyed like
    :class:`~scaling_repro.evaluate.run.EvalResult`."""
    grouped: dict[str, dict[str, Generations]] = {}
    for row in rows:
        sets = grouped.setdefault(row["kind"], {})
        gens = sets.setdefault(row["set"], Generations([], [], []))
        gens.predictions.append(row["prediction"])
        gens.references.append(row["reference"])
        gens.langs.append(row.get("lang"))
    fields: dict[str, Any] = {"metrics": {}, "zero_shot": {}, "few_shot": {}}
    for kind, sets in grouped.items():
        scores = score_sets(metrics, sets, bleurt=bleurt)
        if kind == "test":
            fields["metrics"] = scores
        elif kind == "zero_shot":
            fields["zero_shot"] = with_direction_mean(scores)
        elif kind.endswith("-shot"):
            fields["few_shot"][kind.removesuffix("-shot")] = scores
    return fields
