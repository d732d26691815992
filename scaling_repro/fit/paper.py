"""Published numbers of the paper that the fit stage reproduces or compares against.

Units (not stated in the paper; the published values are consistent with these, see
``shared/reference/PAPER.md``): X in raw parameters (model size), raw tokens (pretraining data)
or prompt length / LoRA rank (PET size); Df in examples; loss in nats per token.
"""

from __future__ import annotations

TASKS = ("wmt14_en_de", "wmt19_en_zh", "mlsum")
METHODS = ("full", "prompt", "lora")

# Table 4: multiplicative-law parameters per (task, method): factor -> (A, alpha), plus the
# shared beta and E. pet_size only for Prompt and LoRA.
_TABLE4_ROWS = {
    # task, method:  A_m, alpha_m, A_p, alpha_p, A_t, alpha_t, E, beta
    ("wmt14_en_de", "full"): (1.2e5, 0.52, 6.3e2, 0.21, None, None, 0.75, 0.15),
    ("wmt14_en_de", "prompt"): (3.9e3, 0.4, 2.7e2, 0.21, 1.0, 0.0027, 0.62, 0.051),
    ("wmt14_en_de", "lora"): (2.1e3, 0.36, 1.4e2, 0.18, 1.4, -0.0017, 0.62, 0.081),
    ("wmt19_en_zh", "full"): (3.3e3, 0.34, 2.4e2, 0.17, None, None, 1.0, 0.14),
    ("wmt19_en_zh", "prompt"): (8.5e2, 0.33, 2e2, 0.2, 1.0, 0.0019, 0.77, 0.015),
    ("wmt19_en_zh", "lora"): (6.6e2, 0.31, 1.3e2, 0.18, 1.2, 0.0044, 0.73, 0.025),
    ("mlsum", "full"): (3.3e2, 0.24, 42.0, 0.11, None, None, 0.98, 0.087),
    ("mlsum", "prompt"): (23.0, 0.1, 16.0, 0.069, 2.6, 0.0026, 0.00051, 0.025),
    ("mlsum", "lora"): (26.0, 0.11, 17.0, 0.073, 2.4, 0.00022, 0.2, 0.03),
}


def table4(task: str, method: str) -> dict[str, dict[str, float]]:
    """Return Table 4's multiplicative-law parameters of one column: factor -> {A, alpha, beta, E}."""
    a_m, alpha_m, a_p, alpha_p, a_t, alpha_t, e, beta = _TABLE4_ROWS[(task, method)]
    out = {
        "model_size": {"A": a_m, "alpha": alpha_m, "beta": beta, "E": e},
        "pretrain_data": {"A": a_p, "alpha": alpha_p, "beta": beta, "E": e},
    }
    if a_t is not None:
        out["pet_size"] = {"A": a_t, "alpha": alpha_t, "beta": beta, "E": e}
    return out


# Table 1b: the scaling grid (the largest value of each axis is held out for extrapolation).
MODEL_SIZES = (1e9, 2e9, 4e9, 8e9, 16e9)
PRETRAIN_TOKENS = {
    "wmt14_en_de": (84e9, 126e9, 167e9, 209e9, 283e9),
    "wmt19_en_zh": (84e9, 105e9, 126e9, 147e9, 167e9, 206e9),
    "mlsum": (84e9, 126e9, 167e9, 209e9, 283e9),  # MLSum uses the En-De LLM
}
PET_SIZES = {"prompt": (50, 100, 150, 200, 300, 400, 600), "lora": (4, 8, 16, 32, 48, 64, 128)}
_PET_DATA = (8e3, *(k * 1e4 for k in range(1, 11)))
FINETUNE_EXAMPLES = {
    ("wmt14_en_de", "full"): (1e5, *(k * 5e5 for k in range(1, 10))),
    ("wmt19_en_zh", "full"): (1e6, 2e6, 3e6, 4e6, 5e6, 10e6, 15e6, 20e6, 25e6),
    ("mlsum", "full"): tuple(k * 1e5 for k in range(1, 10)),
    **{(task, method): _PET_DATA for task in TASKS for method in ("prompt", "lora")},
}

# Table 5: (H, gamma) of the closed-form critical data size, model-size scaling, per task:
# pairs (method 1, method 2) -> (H, gamma).
TABLE5_MODEL_SIZE = {
    "wmt14_en_de": {("full", "prompt"): (3.7e14, -1.2), ("full", "lora"): (2e24, -2.4), ("prompt", "lora"): (1.6e-9, 1.5)},
    "wmt19_en_zh": {("full", "prompt"): (6.1e4, -0.12), ("full", "lora"): (1.6e6, -0.3), ("prompt", "lora"): (1.8e-11, 1.9)},
    "mlsum": {("full", "prompt"): (3.6e18, -2.1), ("full", "lora"): (1.2e17, -1.8), ("prompt", "lora"): (4.5e-4, 2.3)},
}


def synthetic_points(task: str, method: str, noise: float = 0.005, runs: int = 3, seed: int = 0):
    """Return factor -> FitPoints on the Table 1b grid with losses from Table 4 plus noise.

    Each point averages ``runs`` runs whose loss is the law's plus Gaussian noise of standard
    deviation ``noise`` (nats); the largest x and the largest Df are held out, as in the paper.
    For validating the fitting procedure against known parameters and for benchmarks.
    """
    import numpy as np

    from scaling_repro.fit.laws import predict
    from scaling_repro.fit.points import PET_UNITS, X_UNITS, FitPoints, holdout_mask

    rng = np.random.default_rng(seed)
    xs = {"model_size": MODEL_SIZES, "pretrain_data": PRETRAIN_TOKENS[task], "pet_size": PET_SIZES.get(method)}
    out = {}
    for factor, params in table4(task, method).items():
        x, df = (a.ravel() for a in np.meshgrid(xs[factor], FINETUNE_EXAMPLES[(task, method)], indexing="ij"))
        clean = predict("multiplicative", params, x, df)
        run_losses = clean[:, None] + rng.normal(0.0, noise, (len(clean), runs))
        out[factor] = FitPoints(
            x=x,
            data_size=df,
            loss=run_losses.mean(axis=1),
            held_out=holdout_mask(x, df, np.zeros(len(x), bool), "largest"),
            runs=tuple(map(tuple, run_losses)),
            x_unit=PET_UNITS[method] if factor == "pet_size" else X_UNITS[factor],
            labels={"task": task, "method": method, "factor": factor, "source": "synthetic Table 4"},
        )
    return out
