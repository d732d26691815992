"""How a study's finetuning results are fitted and judged: the ``analysis:`` section of a plan."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from scaling_repro.config.base import ConfigSection


class AnalysisSettings(ConfigSection):
    """How the finetuning results are fitted and judged (experiments are found from the runs'
    factors: see :mod:`scaling_repro.analysis.reproduction`; the criteria:
    :mod:`scaling_repro.analysis.findings`)."""

    bootstrap: int = Field(200, ge=0, description="bootstrap replicates for intervals and verdicts (0 = none)")
    resample: Literal["points", "runs", "runs+points"] = Field(
        "runs+points",
        description="what a bootstrap replicate resamples: fitting points, each point's runs (seeds), or both",
    )
    level: float = Field(0.9, gt=0, lt=1, description="central coverage of the bootstrap intervals")
    noise_sigmas: float = Field(2.0, gt=0, description="how many seed-noise sigmas a measured difference must exceed")
    held_out_error: float | None = Field(
        None,
        gt=0,
        description="finding 1: largest held-out error, as a share of the loss, that counts as a fit "
        "(null: the paper's worst, En-Zh LoRA model size, 2.3%)",
    )
    alpha_t_threshold: float = Field(0.01, gt=0, description="finding 3: |alpha_t| below this is 'ineffective'")
