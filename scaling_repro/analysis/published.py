"""The paper's published numbers: Table 1b's grid, Table 4's laws, Tables 5-7, for fits to
reproduce and for the ``--compare-paper`` columns (arXiv 2402.17193v1; ``shared/reference/PAPER.md``).

Units (not stated in the paper; the published values are consistent with these): X in raw
parameters (model size), raw tokens (pretraining data) or prompt length / LoRA rank (PET size);
Df in examples; loss in nats per token. Keys: task (``wmt14_en_de``, ``wmt19_en_zh``, ``mlsum``),
factor (``model_size``, ``pretrain_data``, ``pet_size``), method (``full``, ``prompt``, ``lora``).
"""

from __future__ import annotations

from scaling_repro.config.recipe import METHODS, PET_METHODS

TASKS = ("wmt14_en_de", "wmt19_en_zh", "mlsum")

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
    if a_t is not None and alpha_t is not None:  # both or neither (FMT has no PET size)
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
    **{(task, method): _PET_DATA for task in TASKS for method in PET_METHODS},
}

# Table 5: (H, gamma) of the closed-form critical data size, model-size scaling, per task:
# pairs (method 1, method 2) -> (H, gamma).
TABLE5_MODEL_SIZE = {
    "wmt14_en_de": {
        ("full", "prompt"): (3.7e14, -1.2),
        ("full", "lora"): (2e24, -2.4),
        ("prompt", "lora"): (1.6e-9, 1.5),
    },
    "wmt19_en_zh": {
        ("full", "prompt"): (6.1e4, -0.12),
        ("full", "lora"): (1.6e6, -0.3),
        ("prompt", "lora"): (1.8e-11, 1.9),
    },
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
    xs: dict[str, tuple[float, ...]] = {"model_size": MODEL_SIZES, "pretrain_data": PRETRAIN_TOKENS[task]}
    if method in PET_SIZES:  # table4 has a pet_size column only for these
        xs["pet_size"] = PET_SIZES[method]
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


_FACTORS = ("model_size", "pretrain_data", "pet_size")


def _by_factor(rows: dict[str, tuple]) -> dict[tuple[str, str, str], float]:
    """Expand {task: (factor rows of (FMT, Prompt, LoRA))} into {(task, factor, method): value}."""
    out = {}
    for task, factor_rows in rows.items():
        for factor, values in zip(_FACTORS, factor_rows):
            for method, value in zip(METHODS, values):
                if value is not None:
                    out[(task, factor, method)] = value
    return out


# Table 6 (Table 2 is its En-De part): held-out mean absolute deviation per law.
MAD_HELD_OUT = {
    "multiplicative": _by_factor(
        {
            "wmt14_en_de": ((0.0052, 0.0043, 0.0047), (0.0057, 0.0061, 0.0084), (None, 0.005, 0.0031)),
            "wmt19_en_zh": ((0.0075, 0.019, 0.026), (0.002, 0.0071, 0.0056), (None, 0.0075, 0.0051)),
            "mlsum": ((0.0066, 0.013, 0.022), (0.009, 0.0083, 0.0039), (None, 0.0081, 0.003)),
        }
    ),
    "additive": _by_factor(
        {
            "wmt14_en_de": ((0.012, 0.0076, 0.0045), (0.0048, 0.0075, 0.0082), (None, 0.0069, 0.0032)),
            "wmt19_en_zh": ((0.021, 0.018, 0.029), (0.0026, 0.0069, 0.0058), (None, 0.0076, 0.0044)),
            "mlsum": ((0.0072, 0.015, 0.017), (0.0062, 0.0046, 0.0043), (None, 0.0053, 0.0027)),
        }
    ),
}
# The published "Avg" column (mean over the methods of a row).
MAD_HELD_OUT_AVG = {
    "multiplicative": {
        ("wmt14_en_de", "model_size"): 0.0048,
        ("wmt14_en_de", "pretrain_data"): 0.0068,
        ("wmt14_en_de", "pet_size"): 0.004,
        ("wmt19_en_zh", "model_size"): 0.018,
        ("wmt19_en_zh", "pretrain_data"): 0.0049,
        ("wmt19_en_zh", "pet_size"): 0.0063,
        ("mlsum", "model_size"): 0.014,
        ("mlsum", "pretrain_data"): 0.007,
        ("mlsum", "pet_size"): 0.0055,
    },
    "additive": {
        ("wmt14_en_de", "model_size"): 0.0079,
        ("wmt14_en_de", "pretrain_data"): 0.0069,
        ("wmt14_en_de", "pet_size"): 0.005,
        ("wmt19_en_zh", "model_size"): 0.022,
        ("wmt19_en_zh", "pretrain_data"): 0.0051,
        ("wmt19_en_zh", "pet_size"): 0.006,
        ("mlsum", "model_size"): 0.013,
        ("mlsum", "pretrain_data"): 0.005,
        ("mlsum", "pet_size"): 0.004,
    },
}

# Table 5: (H, gamma) of Df_c = H * X^gamma for method pairs, per task and factor.
_TABLE5_PRETRAIN_DATA = {
    "wmt14_en_de": {
        ("full", "prompt"): (3.7e3, -0.0015),
        ("full", "lora"): (6.9e8, -0.5),
        ("prompt", "lora"): (7.7e-10, 1.2),
    },
    "wmt19_en_zh": {
        ("full", "prompt"): (5.0, 0.26),
        ("full", "lora"): (2.7e2, 0.093),
        ("prompt", "lora"): (8.6e-19, 2.1),
    },
    "mlsum": {("full", "prompt"): (3.7e6, -0.63), ("full", "lora"): (1e7, -0.63), ("prompt", "lora"): (1.6e2, -0.63)},
}
CRITICAL_POWER_LAW = {"model_size": TABLE5_MODEL_SIZE, "pretrain_data": _TABLE5_PRETRAIN_DATA}

# Table 7: Pearson r between PPL and BLEURT (translation) / RougeL (MLSum); all significant at
# p < 0.01 except En-De FMT model size.
PEARSON_R = _by_factor(
    {
        "wmt14_en_de": ((-0.184, -0.986, -0.988), (-0.792, -0.967, -0.980), (None, -0.841, -0.975)),
        "wmt19_en_zh": ((-0.984, -0.994, -0.995), (-0.994, -0.979, -0.978), (None, -0.643, -0.968)),
        "mlsum": ((-0.965, -0.909, -0.890), (-0.941, -0.833, -0.838), (None, -0.924, -0.986)),
    }
)
PEARSON_METRIC = {"wmt14_en_de": "bleurt", "wmt19_en_zh": "bleurt", "mlsum": "rougeL"}

# Table 4 row names per factor.
TABLE4_ROWS = {"model_size": ("A_m", "alpha_m"), "pretrain_data": ("A_p", "alpha_p"), "pet_size": ("A_t", "alpha_t")}


def table4_value(task: str, method: str, factor: str, param: str) -> float | None:
    """Return Table 4's value of ``param`` (A, alpha, beta, E) for one fit, or None if unpublished."""
    if task not in TASKS or method not in METHODS:
        return None
    return table4(task, method).get(factor, {}).get(param)


def held_out_loss(task: str, method: str, factor: str) -> float:
    """Return the mean loss Table 4's law predicts at the held-out settings of Table 1b's grid
    (the largest x at every Df, the largest Df at every x): what a held-out MAD is relative to."""
    import numpy as np

    from scaling_repro.fit.laws import predict

    xs = {"model_size": MODEL_SIZES, "pretrain_data": PRETRAIN_TOKENS[task]}.get(factor) or PET_SIZES[method]
    dfs = FINETUNE_EXAMPLES[(task, method)]
    settings = {(x, df) for x in xs for df in dfs if x == max(xs) or df == max(dfs)}
    x, df = (np.array(v, float) for v in zip(*sorted(settings)))
    return float(np.mean(predict("multiplicative", table4(task, method)[factor], x, df)))


def relative_held_out_errors(factors: tuple[str, ...] = ("model_size", "pretrain_data")) -> dict[tuple, float]:
    """Return Table 6's multiplicative held-out MAD divided by the mean held-out loss of the same
    law, per (task, factor, method): the paper's held-out error as a share of the loss."""
    return {
        key: mad / held_out_loss(key[0], key[2], key[1])
        for key, mad in MAD_HELD_OUT["multiplicative"].items()
        if key[1] in factors
    }


def reducible_share(method: str) -> float:
    """Return the median over the paper's tasks of (L - E) / L under Table 4's ``method`` laws at
    the 1B model, final checkpoint, the middle finetuning data size: how much of the loss an
    exponent of L - E acts on in the paper."""
    import numpy as np

    from scaling_repro.fit.laws import predict

    shares = []
    for task in TASKS:
        law = table4(task, method)["model_size"]
        dfs = FINETUNE_EXAMPLES[(task, method)]
        loss = float(predict("multiplicative", law, MODEL_SIZES[0], dfs[len(dfs) // 2]))
        shares.append((loss - law["E"]) / loss)
    return float(np.median(shares))
