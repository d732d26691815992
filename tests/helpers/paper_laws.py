"""Laws for tests of the findings: Table 4-like En-De columns that contradict findings 2-6."""


def contradicting_laws() -> dict:
    """En-De laws against findings 2-6: alpha_p > alpha_m, |alpha_t| = 0.05, beta_FMT < beta_PET, PET alpha
    < beta, and FMT better than PET at small Df (no PET -> FMT switch)."""
    coefficient = {"full": 1.5, "prompt": 18.0, "lora": 18.0}  # of Df^-beta at 1B, final checkpoint, default PET
    beta = {"full": 0.1, "prompt": 0.4, "lora": 0.4}
    anchors = {"model_size": (1e9, 0.05), "pretrain_data": (283e9, 0.3), "pet_size": (None, 0.05)}
    laws = {}
    for method in ("full", "prompt", "lora"):
        column = {}
        for factor, (x0, alpha) in anchors.items():
            x0 = x0 or {"prompt": 100, "lora": 4}.get(method)
            if x0 is None:
                continue
            column[factor] = {"A": coefficient[method] * x0**alpha, "alpha": alpha, "beta": beta[method], "E": 0.6}
        laws[("wmt14_en_de", method)] = column
    return laws
