"""LawFit and JointFit: the typed, JSON-serializable results of the fit stage.

A LawFit carries everything a figure, a table or the ``advise`` command needs without refitting:
the law and its parameters in raw units (with the units of X and Df), the objective, every
point with its prediction and whether it was held out, the mean absolute deviation on the
fitting set (the paper's Delta_e) and on the held-out set (Delta_h), and optional bootstrap
intervals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from scaling_repro.fileio import atomic_write_text
from scaling_repro.fit.laws import get_law, predict


class FitPoint(BaseModel):
    """One (x, Df) point: the observed loss (mean over its runs) and the fitted law's prediction."""

    model_config = ConfigDict(extra="ignore")  # read files written by newer versions

    x: float | None
    data_size: float
    loss: float
    predicted: float
    held_out: bool = False
    runs: list[float] = Field(default_factory=list, description="per-run losses behind `loss`, if known")


class Bootstrap(BaseModel):
    """Bootstrap replicates of a fit and the percentile intervals they give."""

    model_config = ConfigDict(extra="ignore")  # read files written by newer versions

    n_samples: int
    resample: Literal["points", "runs", "runs+points"]
    level: float = Field(description="central coverage of the intervals, e.g. 0.9")
    seed: int
    intervals: dict[str, tuple[float, float]] = Field(description="parameter -> (low, high)")
    samples: list[dict[str, float]] = Field(description="the parameters of every replicate")
    losses: list[list[float]] | None = Field(
        None, description="resample 'runs+points': every point's loss in every replicate (held-out points too)"
    )

    def interval(self, values: np.ndarray, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return the (low, high) percentile interval over replicates (axis 0) of ``values``."""
        tail = 50.0 * (1.0 - (self.level if level is None else level))
        return np.percentile(values, tail, axis=0), np.percentile(values, 100.0 - tail, axis=0)


class LawFit(BaseModel):
    """A fitted scaling law (see the module docstring)."""

    model_config = ConfigDict(extra="ignore")  # read files written by newer versions

    law: str
    formula: str
    residual: Literal["linear", "log"]
    huber_delta: float
    estimator: Literal["huber", "huber_mle"] = "huber"
    params: dict[str, float] = Field(description="raw units: X in x_unit, Df in df_unit")
    fixed: list[str] = Field(default_factory=list, description="parameters held fixed, not fitted")
    x_unit: str | None = None
    df_unit: str = "examples"
    objective: float = Field(description="summed Huber loss at the optimum (huber_mle: its NLL)")
    scale: float | None = Field(None, description="fitted Huber scale sigma (estimator huber_mle)")
    n_points: int = Field(description="points the law was fitted on")
    n_held_out: int = 0
    mad_fit: float = Field(description="mean |predicted - loss| on the fitting points (Delta_e)")
    mad_held_out: float | None = Field(None, description="the same on the held-out points (Delta_h)")
    points: list[FitPoint]
    n_starts: int = 1
    converged: bool = True
    bootstrap: Bootstrap | None = None
    labels: dict[str, str] = Field(default_factory=dict, description="e.g. task, method, factor")

    def predict(self, x, data_size) -> np.ndarray:
        """Return the predicted loss at (x, data_size) in raw units; x may be None for 'single'."""
        return predict(get_law(self.law), self.params, x, data_size)

    def prediction_interval(self, x, data_size, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return the bootstrap (low, high) interval of the predicted loss at (x, data_size)."""
        if self.bootstrap is None:
            raise ValueError("this fit has no bootstrap; fit with bootstrap=N or call scaling_repro.fit.bootstrap_fit")
        law = get_law(self.law)
        preds = np.stack([predict(law, sample, x, data_size) for sample in self.bootstrap.samples])
        return self.bootstrap.interval(preds, level)

    def save(self, path: str | Path) -> Path:
        """Write this fit as JSON atomically and return the path."""
        atomic_write_text(path, self.model_dump_json(indent=2) + "\n")
        return Path(path)


class JointFit(BaseModel):
    """The paper's joint procedure for one task x method (Sec. 3).

    ``shared`` holds beta and E estimated jointly over the factors in ``shared_over``;
    ``fits`` holds one LawFit per factor, refit with beta and E fixed to those values.
    """

    model_config = ConfigDict(extra="ignore")  # read files written by newer versions

    law: str
    shared: dict[str, float]
    shared_over: list[str]
    joint_params: dict[str, float] = Field(description="every parameter of the joint fit, e.g. alpha[model_size]")
    joint_objective: float
    fits: dict[str, LawFit]
    labels: dict[str, str] = Field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write this joint fit as JSON atomically and return the path."""
        atomic_write_text(path, self.model_dump_json(indent=2) + "\n")
        return Path(path)


FITS_SCHEMA = "scaling_repro.fit/1"


def save_fits(path: str | Path, fits: list[LawFit] | None = None, joint: list[JointFit] | None = None) -> Path:
    """Write law fits and joint fits to one JSON file atomically (read it with :func:`load_fits`)."""
    import json

    data = {
        "schema": FITS_SCHEMA,
        "law_fits": [f.model_dump(mode="json") for f in fits or []],
        "joint_fits": [j.model_dump(mode="json") for j in joint or []],
    }
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return Path(path)


def load_fits(path: str | Path) -> tuple[list[LawFit], list[JointFit]]:
    """Return the (law fits, joint fits) stored in a file written by :func:`save_fits`."""
    import json

    from scaling_repro.errors import UserError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read fits file {path}: {err}") from None
    if not isinstance(data, dict) or data.get("schema") != FITS_SCHEMA:
        raise UserError(f"{path} is not a fits file (expected schema {FITS_SCHEMA!r})")
    return (
        [LawFit.model_validate(f) for f in data["law_fits"]],
        [JointFit.model_validate(j) for j in data["joint_fits"]],
    )
