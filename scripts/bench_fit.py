"""Benchmark of the fit stage (issue 4). Prints wall times; run from the repository root:

    python scripts/bench_fit.py                  # everything (the baseline takes a minute or more)
    python scripts/bench_fit.py --baseline-every 10   # baseline on every 10th start only (quicker, labelled)

1. A Chinchilla-sized problem: the 240 Chinchilla runs of Besiroglu et al. (2024)
   (tests/fixtures/chinchilla_epoch.csv), additive law, Huber (delta 1e-3) on log residuals.
   Our ``fit_law`` against a straightforward baseline in the same process: L-BFGS-B (analytic
   gradient, tolerances tight enough to converge) from every start of Hoffmann et al.'s grid
   of initializations (alpha, beta in {0, 0.5, .., 2}, e in {-1, -0.5, .., 1}, a, b in
   {0, 5, .., 25}: 4500 starts), keeping the best. Reports both times, the ratio and the
   relative difference of the optima.
2. Every fit of the paper's grid on data generated from Table 4 (+ noise, 3 runs per point):
   for the 9 task x method columns, the joint procedure with the multiplicative law (Table 4)
   and with the additive law (Tables 2 / 6), and the single-variable fits per model size
   (Fig. 1). No bootstrap.
3. With ``--check-optimum K``: for every problem of 2. (two noise seeds, linear and log
   residuals), K L-BFGS-B polishes from random starts; reports the largest relative amount by
   which any of them beat our optimum and how often they reached it.

BLAS threads are pinned to 1: the problems are tiny and thread start-up only costs time.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.optimize import minimize  # noqa: E402
from scipy.special import huber, logsumexp  # noqa: E402

from scaling_repro.analysis import published as paper
from scaling_repro.fit import fit_law  # noqa: E402
from scaling_repro.fit.design import Group, build_design  # noqa: E402
from scaling_repro.fit.joint import SHARED, fit_joint  # noqa: E402
from scaling_repro.fit.laws import get_law  # noqa: E402
from scaling_repro.fit.optimize import polish, solve  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "chinchilla_epoch.csv"
DELTA = 1e-3


def chinchilla() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frame = pd.read_csv(FIXTURE, comment="#")
    keep = frame["loss"] < np.sort(frame["loss"])[-5]  # the 240 runs Besiroglu et al. fit
    return frame["model_size"][keep].to_numpy(), frame["tokens"][keep].to_numpy(), frame["loss"][keep].to_numpy()


def baseline(n, d, loss, every: int = 1) -> tuple[float, dict[str, float], int]:
    """Best L-BFGS-B fit over Hoffmann et al.'s grid of starts; returns (objective, params, starts)."""
    ln, ld, ll = np.log(n), np.log(d), np.log(loss)

    def value_and_grad(p):
        a, b, e, alpha, beta = p
        terms = np.stack([a - alpha * ln, b - beta * ld, np.full_like(ln, e)])
        pred = logsumexp(terms, axis=0)
        r = pred - ll
        weights = np.exp(terms - pred) * np.clip(r, -DELTA, DELTA)
        grad = [
            weights[0].sum(),
            weights[1].sum(),
            weights[2].sum(),
            -(weights[0] * ln).sum(),
            -(weights[1] * ld).sum(),
        ]
        return huber(DELTA, r).sum(), np.array(grad)

    grid = list(
        itertools.product(
            np.arange(0, 30, 5),
            np.arange(0, 30, 5),
            np.arange(-1, 1.5, 0.5),
            np.arange(0, 2.5, 0.5),
            np.arange(0, 2.5, 0.5),
        )
    )[::every]
    best = None
    for start in grid:
        result = minimize(
            value_and_grad,
            np.array(start, float),
            jac=True,
            method="L-BFGS-B",
            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000, "maxls": 50},
        )
        if best is None or result.fun < best.fun:
            best = result
    a, b, e, alpha, beta = best.x
    return float(best.fun), {"A": np.exp(a), "alpha": alpha, "B": np.exp(b), "beta": beta, "E": np.exp(e)}, len(grid)


def bench_chinchilla(every: int) -> None:
    n, d, loss = chinchilla()
    print(f"== Chinchilla-sized problem: {len(loss)} points, additive law, Huber(1e-3) on log residuals")
    times = []
    for _ in range(5):
        start = time.perf_counter()
        fit = fit_law(n, d, loss, law="additive", residual="log", huber_delta=DELTA)
        times.append(time.perf_counter() - start)
    ours = float(np.median(times))
    print(
        f"ours      {ours:8.3f} s  (median of 5)  objective {fit.objective:.12e}  "
        + " ".join(f"{k}={v:.5g}" for k, v in fit.params.items())
    )
    start = time.perf_counter()
    objective, params, starts = baseline(n, d, loss, every)
    base = time.perf_counter() - start
    label = f"{starts} starts" + (
        "" if every == 1 else f" (every {every}th of the grid; full-grid time ~{base * every:.0f} s)"
    )
    print(
        f"baseline  {base:8.3f} s  ({label})  objective {objective:.12e}  "
        + " ".join(f"{k}={v:.5g}" for k, v in params.items())
    )
    rel = (fit.objective - objective) / objective
    print(f"speed-up  {base / ours:8.1f} x   objective relative difference (ours - baseline) / baseline = {rel:+.2e}")


def bench_paper_grid() -> None:
    print("== every fit of the paper's grid (synthetic Table 4 data, no bootstrap)")
    data = {(t, m): paper.synthetic_points(t, m, noise=0.005, seed=0) for t in paper.TASKS for m in paper.METHODS}
    totals = {
        "joint multiplicative (Table 4)": 0.0,
        "joint additive (Tables 2/6)": 0.0,
        "single per model size (Fig. 1)": 0.0,
    }
    n_fits = 0
    for (task, method), factors in data.items():
        start = time.perf_counter()
        joint = fit_joint(factors, "multiplicative")
        totals["joint multiplicative (Table 4)"] += time.perf_counter() - start
        start = time.perf_counter()
        fit_joint(factors, "additive")
        totals["joint additive (Tables 2/6)"] += time.perf_counter() - start
        start = time.perf_counter()
        points = factors["model_size"]
        for size in np.unique(points.x):
            rows = points.x == size
            fit_law(
                None,
                points.data_size[rows],
                points.loss[rows],
                law="single",
                held_out=points.held_out[rows] & (size != points.x.max()),
            )
        totals["single per model size (Fig. 1)"] += time.perf_counter() - start
        n_fits += 2 * (1 + len(joint.fits)) + len(np.unique(points.x))
        betas = joint.shared["beta"], paper.table4(task, method)["model_size"]["beta"]
        print(f"  {task:12s} {method:7s} beta {betas[0]:.4f} (Table 4: {betas[1]})")
    for name, seconds in totals.items():
        print(f"{name:32s} {seconds:7.3f} s")
    print(f"{'total':32s} {sum(totals.values()):7.3f} s  ({n_fits} fits, 9 columns; target < 5 s on 2 cores)")


def check_optimum(starts: int) -> None:
    print(f"== global optimum check: our fit vs {starts} random-start L-BFGS-B polishes per problem")
    rng = np.random.default_rng(0)
    problems, worst, reached = 0, -np.inf, []
    for task in paper.TASKS:
        for method in paper.METHODS:
            for seed in range(2):
                factors = paper.synthetic_points(task, method, noise=0.005, seed=seed)
                groups = [
                    Group(
                        f,
                        factors[f].x[~factors[f].held_out],
                        factors[f].data_size[~factors[f].held_out],
                        factors[f].loss[~factors[f].held_out],
                    )
                    for f in ("model_size", "pretrain_data")
                ]
                designs = [
                    (build_design(get_law(law), groups, shared=SHARED), residual)
                    for law in ("multiplicative", "additive")
                    for residual in ("linear", "log")
                ]
                points = factors["model_size"]
                for size in np.unique(points.x):
                    rows = points.x == size
                    group = Group("one", None, points.data_size[rows], points.loss[rows])
                    designs.append((build_design(get_law("single"), [group]), "linear"))
                for design, residual in designs:
                    ours = solve(design, residual, DELTA).objective
                    p, k = len(design.exponents), len(design.coefficients)
                    found = np.array(
                        [
                            polish(
                                design,
                                np.r_[rng.uniform(-0.3, 1.5, p), design.loss.max() * np.exp(rng.uniform(-5, 1, k))],
                                residual,
                                DELTA,
                            )[1]
                            for _ in range(starts)
                        ]
                    )
                    worst = max(worst, (ours - found.min()) / found.min())
                    reached.append(np.isclose(found, ours, rtol=1e-6).mean())
                    problems += 1
    print(
        f"{problems} problems: largest (ours - best random start) / best = {worst:+.2e}; "
        f"random starts reaching our optimum: {np.mean(reached):.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-every", type=int, default=1, help="run the baseline on every k-th start only")
    parser.add_argument("--skip-baseline", action="store_true", help="only the paper grid")
    parser.add_argument("--check-optimum", type=int, default=0, metavar="K", help="K random starts per problem (slow)")
    args = parser.parse_args()
    print(f"cores available: {len(os.sched_getaffinity(0))}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    bench_paper_grid()
    if not args.skip_baseline:
        bench_chinchilla(args.baseline_every)
    if args.check_optimum:
        check_optimum(args.check_optimum)


if __name__ == "__main__":
    main()
