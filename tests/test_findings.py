"""The seven findings: each verdict follows from the numbers by its stated criterion."""

import pytest

from scaling_repro.analysis.findings import Estimate, check_findings, compare, findings_markdown
from scaling_repro.fit.record import Bootstrap, JointFit, LawFit
from scaling_repro.analysis.reproduction import MethodFits, StudyAnalysis
from scaling_repro.analysis.checks import BestMethod, Noise, StudyChecks, ZeroShot
from scaling_repro.config.study_plan import Analysis

METHODS = ("full", "prompt", "lora")


def law(params, intervals=None, mad_held_out=0.01):
    boot = None
    if intervals:
        boot = Bootstrap(n_samples=10, resample="points", level=0.9, seed=0, intervals=intervals, samples=[])
    return LawFit(law="multiplicative", formula="", residual="linear", huber_delta=1e-3, params=params, objective=0.0,
                  n_points=8, n_held_out=4, mad_fit=0.005, mad_held_out=mad_held_out, points=[], bootstrap=boot)


def joint(factor_params, beta, beta_ci, mad=0.01):
    """factor -> (alpha, alpha interval); beta shared with its interval."""
    fits = {
        factor: law({"A": 10.0, "alpha": a, "beta": beta, "E": 0.5},
                    {"alpha": ci, "beta": beta_ci, "A": (9.0, 11.0), "E": (0.4, 0.6)}, mad)
        for factor, (a, ci) in factor_params.items()
    }
    return JointFit(law="multiplicative", shared={"beta": beta, "E": 0.5}, shared_over=["model_size", "pretrain_data"],
                    joint_params={}, joint_objective=0.0, fits=fits)


def analysis(betas=None, alphas=None, alpha_t=(0.001, (-0.002, 0.004)), mad=0.01, sigma=0.01, best=None, zero_shot=None):
    """A StudyAnalysis whose parameters follow the paper unless overridden."""
    betas = betas or {"full": (0.15, (0.12, 0.18)), "prompt": (0.05, (0.03, 0.07)), "lora": (0.08, (0.06, 0.10))}
    alphas = alphas or {m: {"model_size": (0.5, (0.45, 0.55)), "pretrain_data": (0.2, (0.15, 0.25))} for m in METHODS}
    methods = {}
    for m in METHODS:
        factors = dict(alphas[m])
        if m != "full":
            factors["pet_size"] = alpha_t
        fit = joint(factors, *betas[m], mad=mad)
        methods[m] = MethodFits(method=m, multiplicative=fit, additive=fit, single={})
    zero_shot = zero_shot or {"full": (40.0, 41.0), "prompt": (40.5, 45.0), "lora": (40.5, 46.0)}
    checks = StudyChecks(
        noise={m: Noise(method=m, sigma=sigma, settings=5, runs=10, zero_shot_sigma=0.5) for m in METHODS},
        curves=[], largest=[], critical=[], critical_power=[],
        best_method=best or [
            BestMethod(model="tiny-xs", data_size=100, losses={"full": 2.0, "prompt": 1.9, "lora": 1.95}, best="prompt",
                       margin=0.05, tolerance=None),
            BestMethod(model="tiny-xs", data_size=1600, losses={"full": 1.5, "prompt": 1.8, "lora": 1.7}, best="full",
                       margin=0.2, tolerance=None),
        ],
        zero_shot=[
            ZeroShot(method=m, model=model, metric="chrf", score=score, by_data_size={100: score, 200: score})
            for m, scores in zero_shot.items() for model, score in zip(("tiny-xs", "tiny-l"), scores)
        ],
    )
    return StudyAnalysis(fingerprint="", settings=Analysis(), methods=methods, checks=checks)


def verdicts(a):
    return {f.number: f.verdict for f in check_findings(a)}


def test_the_paper_s_numbers_reproduce_every_finding():
    assert set(verdicts(analysis()).values()) == {"reproduced"}


def test_compare_decides_only_on_non_overlapping_intervals():
    high, low = Estimate(name="a", value=0.2, interval=(0.15, 0.25)), Estimate(name="b", value=0.1, interval=(0.05, 0.14))
    assert compare(high, low) == "greater" and compare(low, high) == "less"
    touching = Estimate(name="c", value=0.1, interval=(0.05, 0.16))
    assert compare(high, touching) == "overlap"
    assert compare(high, Estimate(name="d", value=0.1, interval=None)) == "overlap"


def test_finding_4_beta_fmt_above_both_pet_betas():
    overlap = {"full": (0.15, (0.07, 0.18)), "prompt": (0.05, (0.03, 0.07)), "lora": (0.08, (0.06, 0.10))}
    assert verdicts(analysis(betas=overlap))[4] == "inconclusive"
    reversed_ = {"full": (0.03, (0.02, 0.04)), "prompt": (0.05, (0.03, 0.07)), "lora": (0.08, (0.06, 0.10))}
    assert verdicts(analysis(betas=reversed_))[4] == "not reproduced"


def test_finding_1_held_out_mad_against_the_threshold_and_noise():
    assert verdicts(analysis(mad=0.029))[1] == "reproduced"
    assert verdicts(analysis(mad=0.04, sigma=0.01))[1] == "inconclusive"  # 0.04 <= 0.03 + 2 * 0.01
    assert verdicts(analysis(mad=0.2, sigma=0.01))[1] == "not reproduced"


def test_finding_2_alpha_m_against_alpha_p():
    flipped = {m: {"model_size": (0.1, (0.05, 0.12)), "pretrain_data": (0.3, (0.25, 0.35))} for m in METHODS}
    assert verdicts(analysis(alphas=flipped))[2] == "not reproduced"
    close = {m: {"model_size": (0.3, (0.2, 0.4)), "pretrain_data": (0.25, (0.15, 0.35))} for m in METHODS}
    assert verdicts(analysis(alphas=close))[2] == "inconclusive"


@pytest.mark.parametrize("alpha_t, expected", [
    ((0.001, (-0.002, 0.004)), "reproduced"),
    ((0.008, (0.002, 0.015)), "inconclusive"),
    ((0.05, (0.03, 0.07)), "not reproduced"),
])
def test_finding_3_alpha_t_interval_inside_plus_minus_0_01(alpha_t, expected):
    assert verdicts(analysis(alpha_t=alpha_t))[3] == expected


def test_finding_5_pet_alphas_above_pet_betas():
    weak = {m: {"model_size": (0.01, (0.005, 0.015)), "pretrain_data": (0.01, (0.005, 0.015))} for m in METHODS}
    assert verdicts(analysis(alphas=weak))[5] == "not reproduced"


def test_finding_6_fmt_better_even_at_the_smallest_data_size_is_not_reproduced():
    fmt_everywhere = [
        BestMethod(model="tiny-xs", data_size=100, losses={"full": 1.8, "prompt": 1.9, "lora": 1.95}, best="full",
                   margin=0.1, tolerance=None),
        BestMethod(model="tiny-xs", data_size=1600, losses={"full": 1.5, "prompt": 1.8, "lora": 1.7}, best="full",
                   margin=0.2, tolerance=None),
    ]
    assert verdicts(analysis(best=fmt_everywhere))[6] == "not reproduced"
    within_noise = [fmt_everywhere[0].model_copy(update={"losses": {"full": 1.89, "prompt": 1.9, "lora": 1.95}}),
                    fmt_everywhere[1]]
    assert verdicts(analysis(best=within_noise, sigma=0.01))[6] == "inconclusive"


def test_finding_7_pet_zero_shot_gap_at_the_largest_model():
    assert verdicts(analysis(zero_shot={"full": (40.0, 46.0), "prompt": (40.0, 44.0), "lora": (40.0, 44.5)}))[7] == "not reproduced"
    assert verdicts(analysis(zero_shot={"full": (40.0, 44.0), "prompt": (40.0, 44.2), "lora": (40.0, 44.3)}))[7] == "inconclusive"


def test_findings_md_states_each_criterion_verdict_and_numbers():
    findings = check_findings(analysis())
    text = findings_markdown(findings)
    assert len(findings) == 7
    for f in findings:
        assert f"## {f.number}. " in text and f"Criterion: {f.criterion}." in text
        assert all(line in text for line in f.evidence)
    assert "beta_FMT = 0.15 [0.12, 0.18]" in text
    assert text.count("| **reproduced** |") == 7
