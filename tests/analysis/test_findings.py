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
from scaling_repro.fit.laws import predict
from scaling_repro.fit.record import Bootstrap, FitPoint, JointFit
from tests.helpers.factories import build_law_fit

MODELS = {"paper-1b": 1e9, "paper-2b": 2e9, "paper-4b": 4e9, "paper-8b": 8e9, "paper-16b": 16e9}
# Table 4, En-De: (A_m, alpha_m, alpha_p, alpha_t, E, beta)
PAPER = {
    "full": (1.2e5, 0.52, 0.21, None, 0.75, 0.15),
    "prompt": (3.9e3, 0.4, 0.21, 0.0027, 0.62, 0.051),
    "lora": (2.1e3, 0.36, 0.18, -0.0017, 0.62, 0.081),
}
N_REPLICATES = 40
GRID_X = (1.0, 2.0, 4.0)  # every fake law's points; the largest x and Df held out
GRID_DF = (8e3, 1e5, 4.5e6)  # the measured Df range of finding 6: En-De's PET and FMT grids


def law(params, samples, error=0.005, naive_exact=False):
    """A fit with ``params`` whose held-out points lie ``error`` (a share of the loss) above the law;
    with ``naive_exact`` each held-out point measures what its neighbour one step down does."""
    rng = np.random.default_rng(1)
    points = []
    for x in GRID_X:
        for df in GRID_DF:
            held = x == GRID_X[-1] or df == GRID_DF[-1]
            clean = float(predict("multiplicative", params, x, df))
            points.append(FitPoint(x=x, data_size=df, loss=clean * (1 + error * held), predicted=clean, held_out=held))
    if naive_exact:
        by_setting = {(p.x, p.data_size): p.loss for p in points}
        for p in points:
            if p.held_out:
                p.loss = by_setting[(GRID_X[1], p.data_size)] if p.x == GRID_X[-1] else by_setting[(p.x, GRID_DF[1])]
    # each replicate measures its own law's losses, the held-out ones ``error`` above: its held-out error
    # is ``error`` whatever the spread of the replicates' parameters
    losses = [
        [float(predict("multiplicative", sample, q.x, q.data_size)) * (1 + error * q.held_out) for q in points]
        for sample in samples
    ]
    if naive_exact:
        index = {(q.x, q.data_size): i for i, q in enumerate(points)}
        for i, q in enumerate(points):
            if q.held_out:
                neighbour = (GRID_X[1], q.data_size) if q.x == GRID_X[-1] else (q.x, GRID_DF[1])
                for row in losses:
                    row[i] = row[index[neighbour]]
    losses = [[v * (1 + 0.001 * rng.standard_normal()) for v in row] for row in losses]
    boot = Bootstrap(
        n_samples=len(samples),
        resample="runs+points",
        level=0.9,
        seed=0,
        intervals={},
        samples=samples,
        losses=losses,
    )
    return build_law_fit(params=params, points=points, bootstrap=boot, labels={"holdout": "largest"})


def joint(columns, sd, error, seed, naive_exact=False):
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
        # A moves with alpha and beta so that replicates agree in the middle of the grid, as fitted ones do
        x0 = MODELS["paper-4b"] if factor == "model_size" else GRID_X[1]
        samples = [
            {"A": a * x0 ** (x - alpha) * GRID_DF[1] ** (b - beta), "alpha": float(x), "beta": float(b), "E": e}
            for x, b in zip(alphas, betas)
        ]
        fits[factor] = law({"A": a, "alpha": alpha, "beta": beta, "E": e}, samples, error, naive_exact)
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


def zero_shot_rows(metric, scores, spread=0.01):
    """Zero-shot rows at the smallest and largest model, 3 runs at each of 2 data sizes around ``scores``."""
    step = spread * np.array([-1.0, 0.0, 1.0])
    return [
        ZeroShot(
            method=m,
            model=model,
            metric=metric,
            score=s,
            by_data_size={100: s, 200: s},
            runs=6,
            run_scores={100: list(s + step), 200: list(s - step)},
        )
        for m, pair in scores.items()
        for model, s in zip(("paper-1b", "paper-16b"), pair)
    ]


def analysis(columns=None, sd=0.005, error=0.005, drop=(), flat=(), zero_shot=None, naive_exact=False):
    """A StudyAnalysis with the paper's En-De numbers unless overridden."""
    columns = {**PAPER, **(columns or {})}
    methods = {}
    for i, m in enumerate(METHODS):
        fit = joint(columns[m], sd, error, seed=i, naive_exact=naive_exact)
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
    settings = AnalysisSettings(bootstrap=N_REPLICATES)
    return StudyAnalysis(fingerprint="", settings=settings, methods=methods, checks=checks)


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
    a = analysis(error=0.2)
    assert [verdicts(a)[n] for n in (2, 4, 5)] == ["inconclusive"] * 3
    assert any("law fails the fit test (held-out error 16.67%" in line for line in finding(a, 4).evidence)


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


def test_finding_3_judges_a_total_loss_exponent_against_the_paper_s_share_of_l_minus_e():
    columns = {m: (*PAPER[m][:3], 0.005, 0.0, PAPER[m][5]) for m in ("prompt", "lora")}  # E at its bound 0
    result = finding(analysis(columns=columns), 3)
    assert result.verdict == "inconclusive"  # inside +-0.01, outside +-0.01 x (L - E) / L of the paper
    assert "E sits at its bound 0" in result.evidence[0] and "x 0.50" in result.evidence[0]


def test_finding_5_pet_ratios_below_fmt_s_are_not_reproduced():
    weak = {m: (PAPER[m][0], 0.05, 0.05, *PAPER[m][3:]) for m in ("prompt", "lora")}
    assert verdicts(analysis(columns=weak))[5] == "not reproduced"


def test_finding_5_reads_pet_s_ratio_against_fmt_s_not_alpha_against_beta():
    # FMT's alpha / beta (3.5) above both PET ratios, though every alpha exceeds its beta
    strong_fmt = {"full": (1.2e5, 1.5, 0.6, None, 0.75, 0.15)}
    result = finding(analysis(columns=strong_fmt), 5)
    assert result.verdict == "not reproduced" and "FMT 10" in result.evidence[0]


def test_overtaking_size_of_table_4_en_de_fmt_vs_prompt_moves_up_then_vanishes():
    full = {k: np.array([v]) for k, v in zip(("A", "alpha", "E", "beta"), (1.2e5, 0.52, 0.75, 0.15))}
    prompt = {k: np.array([v]) for k, v in zip(("A", "alpha", "E", "beta"), (3.9e3, 0.4, 0.62, 0.051))}
    sizes = [float(overtaking_size(full, prompt, x)[0]) for x in MODELS.values()]
    assert sizes[:3] == pytest.approx([2.4e5, 3.6e5, 2.0e6], rel=0.05)
    assert all(math.isinf(s) for s in sizes[3:])


def test_finding_6_a_crossing_that_moves_down_with_model_size_is_its_own_sub_verdict():
    equal_e = {"full": (*PAPER["full"][:4], 0.62, 0.15)}  # gap E1 - E2 = 0: Df_c = H X^gamma with gamma < 0
    result = finding(analysis(columns=equal_e), 6)
    assert result.parts == {"the switch moves up with model size": "not reproduced"}
    assert "moves down" in " ".join(result.evidence)


def test_finding_6_without_any_pet_to_fmt_switch_is_not_reproduced():
    fmt_worse = {"full": (*PAPER["full"][:4], 0.9, 0.02)}
    assert verdicts(analysis(columns=fmt_worse))[6] == "not reproduced"


def test_finding_6_a_crossing_below_the_smallest_measured_df_is_no_switch():
    # FMT's law better from Df ~ 1.5 on, below the smallest measured Df (8e3): the tie does not count
    early = {"full": (4.0e3, 0.4, 0.21, None, 0.62, 0.3)}
    result = finding(analysis(columns=early), 6)
    assert result.verdict == "not reproduced" and "below 100%" in result.evidence[0]


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


def test_finding_7_a_gap_within_the_run_noise_is_inconclusive():
    a = analysis()
    close = {"full": (1.50, 1.50), "prompt": (1.50, 1.499), "lora": (1.50, 1.498)}
    a.checks.zero_shot += zero_shot_rows("loss", close, spread=0.01)
    assert finding(a, 7).verdict == "inconclusive"


def test_finding_7_without_zero_shot_scores_is_not_testable():
    a = analysis()
    a.checks.zero_shot = []
    assert verdicts(a)[7] == "not testable"


@pytest.mark.parametrize("error, expected", [(0.005, "reproduced"), (0.023, "inconclusive"), (0.1, "not reproduced")])
def test_finding_1_held_out_error_as_a_share_of_the_loss_against_the_paper_s_worst(error, expected):
    assert verdicts(analysis(error=error))[1] == expected


def test_finding_1_a_law_no_better_than_the_naive_forecast_is_not_reproduced():
    result = finding(analysis(naive_exact=True), 1)
    assert result.verdict == "not reproduced" and "below naive in 0%" in result.evidence[0]


def test_findings_md_states_each_criterion_verdict_and_numbers():
    findings = check_findings(analysis())
    text = findings_markdown(findings)
    assert len(findings) == 7
    for f in findings:
        assert f"## {f.number}. " in text and f"Criterion: {f.criterion}." in text
        assert all(line in text for line in f.evidence)
    assert "interval of the paired difference" in text
    assert text.count("| **reproduced") == 7
