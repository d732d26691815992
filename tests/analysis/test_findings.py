"""The seven findings: each verdict follows from the numbers by its stated criterion."""

import math

import numpy as np
import pytest

from scaling_repro.analysis.checks import CriticalSize, CurveCheck, Noise, StudyChecks, ZeroShot
from scaling_repro.analysis.crossing import overtaking_size
from scaling_repro.analysis.findings import check_findings, findings_markdown
from scaling_repro.analysis.paired import decide
from scaling_repro.analysis.reproduction import MethodFits, StudyAnalysis
from scaling_repro.config.recipe import METHODS
from scaling_repro.config.study_plan import AnalysisSettings
from scaling_repro.fit.record import Bootstrap, JointFit
from tests.helpers.factories import build_law_fit

MODELS = {"paper-1b": 1e9, "paper-2b": 2e9, "paper-4b": 4e9, "paper-8b": 8e9, "paper-16b": 16e9}
# Table 4, En-De: (A_m, alpha_m, alpha_p, alpha_t, E, beta)
PAPER = {
    "full": (1.2e5, 0.52, 0.21, None, 0.75, 0.15),
    "prompt": (3.9e3, 0.4, 0.21, 0.0027, 0.62, 0.051),
    "lora": (2.1e3, 0.36, 0.18, -0.0017, 0.62, 0.081),
}
N_REPLICATES = 40


def law(params, samples, mad_held_out=0.01):
    boot = Bootstrap(n_samples=len(samples), resample="points", level=0.9, seed=0, intervals={}, samples=samples)
    return build_law_fit(params=params, mad_held_out=mad_held_out, bootstrap=boot, labels={"holdout": "largest"})


def joint(columns, sd, mad, seed):
    """One method's joint fit: factor -> (A, alpha), shared E and beta; replicates share beta."""
    rng = np.random.default_rng(seed)
    a_m, alpha_m, alpha_p, alpha_t, e, beta = columns
    betas = beta + sd * rng.standard_normal(N_REPLICATES)
    factors = {"model_size": (a_m, alpha_m), "pretrain_data": (1e3, alpha_p)}
    if alpha_t is not None:
        factors["pet_size"] = (1.0, alpha_t)
    fits = {}
    for factor, (a, alpha) in factors.items():
        spread = sd / 5 if factor == "pet_size" else sd  # alpha_t is measured precisely (7 PET sizes)
        alphas = alpha + spread * rng.standard_normal(N_REPLICATES)
        samples = [{"A": a, "alpha": float(x), "beta": float(b), "E": e} for x, b in zip(alphas, betas)]
        fits[factor] = law({"A": a, "alpha": alpha, "beta": beta, "E": e}, samples, mad)
    return JointFit(
        law="multiplicative",
        shared={"beta": beta, "E": e},
        shared_over=["model_size", "pretrain_data"],
        joint_params={},
        joint_objective=0.0,
        fits=fits,
    )


def curves(flat=()):
    out = []
    for method in METHODS:
        for model in MODELS:
            losses = [2.0, 2.0, 2.0] if model in flat else [2.0, 1.8, 1.6]
            out.append(
                CurveCheck(
                    method=method,
                    model=model,
                    data_sizes=[1, 2, 3],
                    losses=losses,
                    runs=[3, 3, 3],
                    worst_increase=0.0,
                    tolerance=None,
                    verdict="decreasing",
                )
            )
    return out


def zero_shot_rows(metric, scores):
    return [
        ZeroShot(method=m, model=model, metric=metric, score=s, by_data_size={100: s}, runs=6)
        for m, pair in scores.items()
        for model, s in zip(("paper-1b", "paper-16b"), pair)
    ]


def analysis(columns=None, sd=0.005, mad=0.01, drop=(), flat=(), zero_shot=None):
    """A StudyAnalysis with the paper's En-De numbers unless overridden."""
    columns = {**PAPER, **(columns or {})}
    methods = {}
    for i, m in enumerate(METHODS):
        fit = joint(columns[m], sd, mad, seed=i)
        fit.fits = {f: v for f, v in fit.fits.items() if f not in drop}
        methods[m] = MethodFits(method=m, multiplicative=fit, additive=fit, single={})
    checks = StudyChecks(
        noise={
            m: Noise(
                method=m,
                sigma=0.01,
                settings=5,
                runs=10,
                zero_shot_sigma=0.5,
                zero_shot_sigmas={"chrf": 0.5, "loss": 0.005},
            )
            for m in METHODS
        },
        curves=curves(flat),
        largest=[],
        best_method=[],
        critical_power=[],
        critical=[
            CriticalSize(methods=("full", "prompt"), model=m, model_params=x, data_size=None) for m, x in MODELS.items()
        ],
        zero_shot=zero_shot_rows(
            "chrf", zero_shot or {"full": (40.0, 41.0), "prompt": (40.5, 45.0), "lora": (40.5, 46.0)}
        ),
    )
    return StudyAnalysis(fingerprint="", settings=AnalysisSettings(), methods=methods, checks=checks)


def verdicts(a):
    return {f.number: f.verdict for f in check_findings(a)}


def finding(a, number):
    return check_findings(a)[number - 1]


def test_the_paper_s_numbers_reproduce_every_finding():
    assert set(verdicts(analysis()).values()) == {"reproduced"}


def test_a_paired_difference_decides_where_the_two_intervals_overlap():
    rng = np.random.default_rng(0)
    common = rng.standard_normal(200)
    a, b = 0.20 + 0.05 * common + 0.001 * rng.standard_normal(200), 0.18 + 0.05 * common
    assert np.percentile(a, 5) < np.percentile(b, 95)  # the separate 90% intervals overlap
    assert decide(a, b, 0.9) == "greater" and decide(b, a, 0.9) == "less"
    assert decide(a, None, 0.9) == "undecided"


def test_finding_4_reversed_betas_are_not_reproduced():
    reversed_ = {"full": (*PAPER["full"][:5], 0.03)}
    assert verdicts(analysis(columns=reversed_))[4] == "not reproduced"


def test_finding_4_betas_within_the_bootstrap_spread_are_inconclusive():
    close = {"full": (*PAPER["full"][:5], 0.052), "lora": (*PAPER["lora"][:5], 0.05)}
    assert verdicts(analysis(columns=close, sd=0.02))[4] == "inconclusive"


def test_a_law_failing_the_fit_test_makes_findings_2_4_5_inconclusive_and_says_why():
    a = analysis(mad=0.2)
    assert [verdicts(a)[n] for n in (2, 4, 5)] == ["inconclusive"] * 3
    assert any("fails the fit test (held-out MAD 0.2000" in line for line in finding(a, 4).evidence)


def test_finding_2_alpha_p_above_alpha_m_is_not_reproduced():
    flipped = {m: (c[0], 0.1, 0.3, *c[3:]) for m, c in PAPER.items()}
    assert verdicts(analysis(columns=flipped))[2] == "not reproduced"


def test_finding_2_without_the_pretraining_axis_is_not_testable():
    assert verdicts(analysis(drop=("pretrain_data",)))[2] == "not testable"


@pytest.mark.parametrize(
    "alpha_t, expected", [(0.001, "reproduced"), (0.009, "inconclusive"), (0.05, "not reproduced")]
)
def test_finding_3_alpha_t_interval_inside_plus_minus_0_01(alpha_t, expected):
    columns = {m: (*PAPER[m][:3], alpha_t, *PAPER[m][4:]) for m in ("prompt", "lora")}
    assert verdicts(analysis(columns=columns))[3] == expected


def test_finding_5_pet_alphas_below_beta_are_not_reproduced():
    weak = {m: (PAPER[m][0], 0.01, 0.01, *PAPER[m][3:]) for m in ("prompt", "lora")}
    assert verdicts(analysis(columns=weak))[5] == "not reproduced"


def test_overtaking_size_of_table_4_en_de_fmt_vs_prompt_moves_up_then_vanishes():
    full = {k: np.array([v]) for k, v in zip(("A", "alpha", "E", "beta"), (1.2e5, 0.52, 0.75, 0.15))}
    prompt = {k: np.array([v]) for k, v in zip(("A", "alpha", "E", "beta"), (3.9e3, 0.4, 0.62, 0.051))}
    sizes = [float(overtaking_size(full, prompt, x)[0]) for x in MODELS.values()]
    assert sizes[:3] == pytest.approx([2.4e5, 3.6e5, 2.0e6], rel=0.05)
    assert all(math.isinf(s) for s in sizes[3:])


def test_finding_6_a_crossing_that_moves_down_with_model_size_is_not_reproduced():
    equal_e = {"full": (*PAPER["full"][:4], 0.62, 0.15)}  # gap E1 - E2 = 0: Df_c = H X^gamma with gamma < 0
    assert verdicts(analysis(columns=equal_e))[6] == "not reproduced"


def test_finding_6_without_any_pet_to_fmt_switch_is_not_reproduced():
    fmt_worse = {"full": (*PAPER["full"][:4], 0.9, 0.02)}
    assert verdicts(analysis(columns=fmt_worse))[6] == "not reproduced"


def test_finding_6_leaves_out_models_that_do_not_learn_the_task():
    result = finding(analysis(flat=("paper-8b", "paper-16b")), 6)
    assert result.evidence[0] == "left out, loss flat in Df for every method: paper-8b, paper-16b"
    assert "paper-16b" not in result.evidence[1] and "paper-4b vs paper-1b" in result.evidence[1]


def test_finding_7_uses_the_zero_shot_test_loss_where_records_have_it():
    a = analysis()
    a.checks.zero_shot += zero_shot_rows("loss", {"full": (1.50, 1.60), "prompt": (1.49, 1.40), "lora": (1.49, 1.41)})
    result = finding(a, 7)
    assert "zero-shot test loss" in result.criterion and result.verdict == "reproduced"
    assert not any("chrF is used" in line for line in result.evidence)


def test_finding_7_falls_back_to_chrf_and_says_so():
    result = finding(analysis(zero_shot={"full": (40.0, 46.0), "prompt": (40.0, 44.0), "lora": (40.0, 44.5)}), 7)
    assert result.verdict == "not reproduced" and "chrF is used" in result.evidence[0]


def test_finding_7_without_zero_shot_scores_is_not_testable():
    a = analysis()
    a.checks.zero_shot = []
    assert verdicts(a)[7] == "not testable"


def test_finding_1_held_out_mad_against_the_threshold_and_noise():
    assert verdicts(analysis(mad=0.029))[1] == "reproduced"
    assert verdicts(analysis(mad=0.04))[1] == "inconclusive"  # 0.04 <= 0.03 + 2 * 0.01
    assert verdicts(analysis(mad=0.2))[1] == "not reproduced"


def test_findings_md_states_each_criterion_verdict_and_numbers():
    findings = check_findings(analysis())
    text = findings_markdown(findings)
    assert len(findings) == 7
    for f in findings:
        assert f"## {f.number}. " in text and f"Criterion: {f.criterion}." in text
        assert all(line in text for line in f.evidence)
    assert "interval of the paired difference" in text
    assert text.count("| **reproduced** |") == 7
