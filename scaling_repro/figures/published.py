"""The paper's published table values that the ``--compare-paper`` columns show beside ours.

Table 4 and Table 5 (model size) come from :mod:`scaling_repro.fit.paper`; the others are
transcribed here from the paper (arXiv 2402.17193v1, Tables 5, 6 and 7; see
``shared/reference/PAPER.md``). Keys: task (``wmt14_en_de``, ``wmt19_en_zh``, ``mlsum``),
factor (``model_size``, ``pretrain_data``, ``pet_size``), method (``full``, ``prompt``, ``lora``).
Units as Table 4: X raw parameters / tokens / prompt length or LoRA rank; Df examples.
"""

from __future__ import annotations

from scaling_repro.fit import paper

TASKS = paper.TASKS
_FACTORS = ("model_size", "pretrain_data", "pet_size")


def _by_factor(rows: dict[str, tuple]) -> dict[tuple[str, str, str], float]:
    """Expand {task: (factor rows of (FMT, Prompt, LoRA))} into {(task, factor, method): value}."""
    out = {}
    for task, factor_rows in rows.items():
        for factor, values in zip(_FACTORS, factor_rows):
            for method, value in zip(paper.METHODS, values):
                if value is not None:
                    out[(task, factor, method)] = value
    return out


# Table 6 (Table 2 is its En-De part): held-out mean absolute deviation per law.
MAD_HELD_OUT = {
    "multiplicative": _by_factor({
        "wmt14_en_de": ((0.0052, 0.0043, 0.0047), (0.0057, 0.0061, 0.0084), (None, 0.005, 0.0031)),
        "wmt19_en_zh": ((0.0075, 0.019, 0.026), (0.002, 0.0071, 0.0056), (None, 0.0075, 0.0051)),
        "mlsum": ((0.0066, 0.013, 0.022), (0.009, 0.0083, 0.0039), (None, 0.0081, 0.003)),
    }),
    "additive": _by_factor({
        "wmt14_en_de": ((0.012, 0.0076, 0.0045), (0.0048, 0.0075, 0.0082), (None, 0.0069, 0.0032)),
        "wmt19_en_zh": ((0.021, 0.018, 0.029), (0.0026, 0.0069, 0.0058), (None, 0.0076, 0.0044)),
        "mlsum": ((0.0072, 0.015, 0.017), (0.0062, 0.0046, 0.0043), (None, 0.0053, 0.0027)),
    }),
}
# The published "Avg" column (mean over the methods of a row).
MAD_HELD_OUT_AVG = {
    "multiplicative": {
        ("wmt14_en_de", "model_size"): 0.0048, ("wmt14_en_de", "pretrain_data"): 0.0068, ("wmt14_en_de", "pet_size"): 0.004,
        ("wmt19_en_zh", "model_size"): 0.018, ("wmt19_en_zh", "pretrain_data"): 0.0049, ("wmt19_en_zh", "pet_size"): 0.0063,
        ("mlsum", "model_size"): 0.014, ("mlsum", "pretrain_data"): 0.007, ("mlsum", "pet_size"): 0.0055,
    },
    "additive": {
        ("wmt14_en_de", "model_size"): 0.0079, ("wmt14_en_de", "pretrain_data"): 0.0069, ("wmt14_en_de", "pet_size"): 0.005,
        ("wmt19_en_zh", "model_size"): 0.022, ("wmt19_en_zh", "pretrain_data"): 0.0051, ("wmt19_en_zh", "pet_size"): 0.006,
        ("mlsum", "model_size"): 0.013, ("mlsum", "pretrain_data"): 0.005, ("mlsum", "pet_size"): 0.004,
    },
}

# Table 5: (H, gamma) of Df_c = H * X^gamma for method pairs, per task and factor.
_TABLE5_PRETRAIN_DATA = {
    "wmt14_en_de": {("full", "prompt"): (3.7e3, -0.0015), ("full", "lora"): (6.9e8, -0.5), ("prompt", "lora"): (7.7e-10, 1.2)},
    "wmt19_en_zh": {("full", "prompt"): (5.0, 0.26), ("full", "lora"): (2.7e2, 0.093), ("prompt", "lora"): (8.6e-19, 2.1)},
    "mlsum": {("full", "prompt"): (3.7e6, -0.63), ("full", "lora"): (1e7, -0.63), ("prompt", "lora"): (1.6e2, -0.63)},
}
CRITICAL_POWER_LAW = {"model_size": paper.TABLE5_MODEL_SIZE, "pretrain_data": _TABLE5_PRETRAIN_DATA}

# Table 7: Pearson r between PPL and BLEURT (translation) / RougeL (MLSum); all significant at
# p < 0.01 except En-De FMT model size.
PEARSON_R = _by_factor({
    "wmt14_en_de": ((-0.184, -0.986, -0.988), (-0.792, -0.967, -0.980), (None, -0.841, -0.975)),
    "wmt19_en_zh": ((-0.984, -0.994, -0.995), (-0.994, -0.979, -0.978), (None, -0.643, -0.968)),
    "mlsum": ((-0.965, -0.909, -0.890), (-0.941, -0.833, -0.838), (None, -0.924, -0.986)),
})
PEARSON_METRIC = {"wmt14_en_de": "bleurt", "wmt19_en_zh": "bleurt", "mlsum": "rougeL"}

# Table 4 row names per factor.
TABLE4_ROWS = {"model_size": ("A_m", "alpha_m"), "pretrain_data": ("A_p", "alpha_p"), "pet_size": ("A_t", "alpha_t")}


def table4_value(task: str, method: str, factor: str, param: str) -> float | None:
    """Return Table 4's value of ``param`` (A, alpha, beta, E) for one fit, or None if unpublished."""
    if task not in paper.TASKS or method not in paper.METHODS:
        return None
    return paper.table4(task, method).get(factor, {}).get(param)
