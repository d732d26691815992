"""The paper's joint procedure (Sec. 3, Eq. 2) for one task x method.

1. Estimate beta and E once, jointly over the LLM-model-size and pretraining-data factors:
   minimize the summed Huber loss over (a_X, [b_X,] alpha_X) per factor and the shared
   (beta, e), on both factors' fitting points together.
2. Fix beta and E and refit the remaining parameters of every factor separately, including PET
   parameter size, which is not used in step 1 (its scaling is too weak, footnote 2).

For the multiplicative law each factor gets ``A_X * X^-alpha_X * Df^-beta + E``; for the
additive law ``A_X * X^-alpha_X + B_X * Df^-beta + E`` (B is per factor, as b_X in Eq. 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from scaling_repro.errors import UserError
from scaling_repro.fit.design import Group, build_design
from scaling_repro.fit.fitting import check_options, require_distinct
from scaling_repro.fit.optimize import Estimator, Residual, solve
from scaling_repro.fit.points import FitPoints
from scaling_repro.fit.record import Bootstrap, JointFit
from scaling_repro.fit.threads import one_blas_thread
from scaling_repro.fit.uncertainty import RESAMPLES, refit

SHARED = ("beta", "E")
JOINT_FACTORS = ("model_size", "pretrain_data")


def _x_values(points: FitPoints, name: str) -> np.ndarray:
    """Return the x values of factor ``name``; raise a UserError when it has none."""
    if points.x is None:
        raise UserError(f"factor {name!r} has no x values; the joint procedure fits X-factors only")
    return points.x


def _joint_groups(factors: Mapping[str, FitPoints], names: Sequence[str]) -> list[Group]:
    """Return one Group per factor in ``names`` with its fitting (not held-out) points.

    Raises a UserError when a factor's fitting points have fewer than 2 distinct x values.
    """
    groups = []
    for name in names:
        points = factors[name]
        rows = ~points.held_out
        x = _x_values(points, name)[rows]
        require_distinct(x, "x", f"alpha[{name}]", f"joint fit, factor {name!r}")
        groups.append(Group(name, x, points.data_size[rows], points.loss[rows]))
    return groups


@one_blas_thread
def fit_joint(
    factors: Mapping[str, FitPoints],
    law: str = "multiplicative",
    residual: Residual = "linear",
    huber_delta: float = 1e-3,
    *,
    shared_over: Sequence[str] = JOINT_FACTORS,
    estimator: Estimator = "huber",
    labels: Mapping[str, str] | None = None,
) -> JointFit:
    """Return the JointFit of the paper's procedure on ``factors`` (factor name -> FitPoints).

    beta and E are estimated over the factors of ``shared_over`` that are present, then every
    factor in ``factors`` is refit with them fixed. Held-out points are left out of both steps.
    """
    law_obj = check_options(law, residual, huber_delta, estimator)
    if not law_obj.uses_x:
        raise UserError(
            f"the joint procedure needs a law with an X factor ('multiplicative' or 'additive'), got {law!r}"
        )
    names = [name for name in shared_over if name in factors]
    if not names:
        raise UserError(f"the joint procedure needs points of at least one of {list(shared_over)}; got {list(factors)}")
    for name in factors:
        _x_values(factors[name], name)  # raises for a factor without x: every factor is refit below
    groups = _joint_groups(factors, names)
    require_distinct(np.concatenate([g.data_size for g in groups]), "data size", "beta", "joint fit")
    design = build_design(law_obj, groups, shared=SHARED)
    n_points = sum(len(g.loss) for g in groups)
    if n_points < design.n_free:
        raise UserError(f"joint fit: {n_points} fitting point(s) but {design.n_free} free parameters")
    solution = solve(design, residual, float(huber_delta), estimator)
    joint_params = design.raw_params(solution.theta, solution.coefs)
    shared = {name: joint_params[name] for name in SHARED}
    fits = {
        name: points.fit(
            law,
            residual,
            huber_delta,
            fixed=shared,
            estimator=estimator,
            labels={**dict(labels or {}), "factor": name},
        )
        for name, points in factors.items()
    }
    return JointFit(
        law=law,
        shared=shared,
        shared_over=names,
        joint_params=joint_params,
        joint_objective=solution.objective,
        fits=fits,
        labels=dict(labels or {}),
    )


@one_blas_thread
def bootstrap_joint(
    joint: JointFit,
    factors: Mapping[str, FitPoints],
    n_samples: int = 200,
    resample: str = "points",
    level: float = 0.9,
    seed: int = 0,
) -> JointFit:
    """Return ``joint`` with bootstrap intervals on every factor's fit, the whole procedure resampled.

    Each replicate resamples every factor's fitting points (or runs), re-estimates beta and E
    jointly (polishing from the full-data optimum) and refits each factor with them, so the
    intervals include the uncertainty of the shared parameters.
    """
    if resample not in RESAMPLES:
        raise UserError(f"resample: got {resample!r}; allowed: {', '.join(map(repr, RESAMPLES))}")
    from scaling_repro.fit.laws import get_law
    from scaling_repro.fit.uncertainty import resampled_losses

    law = get_law(joint.law)
    any_fit = next(iter(joint.fits.values()))
    rng = np.random.default_rng(seed)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in joint.fits}
    losses: dict[str, list[list[float]]] = {name: [] for name in joint.fits}
    for _ in tqdm(range(n_samples), desc="bootstrap (joint)", leave=False, disable=None):
        drawn = {name: resampled_losses(fit, rng, resample) for name, fit in joint.fits.items()}
        groups = [
            Group(
                name,
                _x_values(factors[name], name)[drawn[name][1]],
                factors[name].data_size[drawn[name][1]],
                drawn[name][0][drawn[name][1]],
            )
            for name in joint.shared_over
        ]
        design = build_design(law, groups, shared=SHARED)
        solution = solve(design, any_fit.residual, any_fit.huber_delta, any_fit.estimator, start=joint.joint_params)
        params = design.raw_params(solution.theta, solution.coefs)
        shared = {name: params[name] for name in SHARED}
        for name, fit in joint.fits.items():
            loss, index = drawn[name]
            samples[name].append(refit(fit, loss, index, fixed=shared))
            losses[name].append(loss.tolist())
    fits = {}
    for name, fit in joint.fits.items():
        names = list(fit.params)
        values = np.array([[s[p] for p in names] for s in samples[name]])
        boot = Bootstrap(
            n_samples=n_samples,
            resample=resample,
            level=level,
            seed=seed,
            intervals={},
            samples=samples[name],
            losses=losses[name] if resample == "runs+points" else None,
        )
        low, high = boot.interval(values)
        boot.intervals = {p: (float(lo), float(hi)) for p, lo, hi in zip(names, low, high)}
        fits[name] = fit.model_copy(update={"bootstrap": boot})
    return joint.model_copy(update={"fits": fits})
