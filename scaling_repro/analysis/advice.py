"""``advise``: which finetuning method the fitted scaling laws predict is best for a model and data size.

For each method (FMT, Prompt, LoRA) the model-size law ``L(X, Df) = A X^-alpha Df^-beta + E``
comes from a results directory (the joint procedure of :class:`~scaling_repro.analysis.fitted_results.FittedResults`,
with bootstrap intervals from resampling the whole procedure) or from the paper's Table 4
(``from_paper``: point estimates only; X in raw parameters, Df in examples). The advice gives:

- the predicted loss of every method at (X, Df) and the best (lowest) one;
- the critical data sizes at X: for every method pair the Df where the two laws tie (the
  paper's Fig. 5, solved numerically), with bootstrap intervals;
- the regimes: which method is best on which range of Df at X (the lower envelope of the laws),
  so that the nearest critical sizes below and above the budget are explicit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from itertools import pairwise

import numpy as np

from scaling_repro.analysis import published as paper
from scaling_repro.analysis.experiments import METHOD_NAMES, PAIRS, Missing, pair_name
from scaling_repro.analysis.fitted_results import FittedResults
from scaling_repro.analysis.numbers import human, sci
from scaling_repro.config.recipe import METHODS
from scaling_repro.errors import UserError
from scaling_repro.fit.critical import critical_data_size
from scaling_repro.fit.joint import bootstrap_joint
from scaling_repro.fit.laws import predict

SCAN_BOUNDS = (1.0, 1e12)  # Df range searched for critical data sizes


@dataclass(frozen=True)
class Prediction:
    """A method's predicted loss at the requested (X, Df), with its bootstrap interval if any."""

    method: str
    loss: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Crossing:
    """The critical data size of a method pair at X (None: the laws do not cross in SCAN_BOUNDS)."""

    pair: tuple[str, str]
    data_size: float | None
    low: float | None = None
    high: float | None = None
    crossed_share: float | None = None  # fraction of bootstrap replicates whose laws cross


@dataclass(frozen=True)
class Regime:
    """A range of finetuning data sizes [low, high) where one method is predicted best."""

    method: str
    low: float | None  # None: from zero
    high: float | None  # None: without bound


@dataclass
class Advice:
    """The answer of :func:`advise` (see the module docstring)."""

    task: str
    model_size: float
    budget_examples: float
    source: str
    best: str
    predictions: list[Prediction]
    crossings: list[Crossing]
    regimes: list[Regime]
    level: float | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the advice as JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class _MethodLaw:
    params: dict[str, float]
    samples: list[dict[str, float]] | None
    x_range: tuple[float, float] | None
    df_range: tuple[float, float] | None


def _paper_laws(task: str) -> dict[str, _MethodLaw]:
    if task not in paper.TASKS:
        raise UserError(f"--task: the paper has no Table 4 column for {task!r}; --from-paper knows {list(paper.TASKS)}")
    return {
        m: _MethodLaw(
            paper.table4(task, m)["model_size"],
            None,
            (min(paper.MODEL_SIZES), max(paper.MODEL_SIZES)),
            (min(paper.FINETUNE_EXAMPLES[(task, m)]), max(paper.FINETUNE_EXAMPLES[(task, m)])),
        )
        for m in METHODS
    }


def _fitted_laws(
    fitted: FittedResults, task: str, bootstrap: int, level: float, seed: int, warnings: list[str]
) -> dict[str, _MethodLaw]:
    laws = {}
    for method in fitted.methods(fitted.check_task(task)[0]):
        try:
            fit = fitted.fit(task, method, "model_size")
        except Missing as err:
            warnings.append(f"{METHOD_NAMES[method]} left out: {err}")
            continue
        samples = None
        if bootstrap:  # resample the whole procedure; refit only the factors beta, E and the advice need
            joint = fitted.joint(task, method)
            needed = {f: joint.fits[f] for f in {*joint.shared_over, "model_size"}}
            joint = bootstrap_joint(
                joint.model_copy(update={"fits": needed}),
                fitted.factors(task, method),
                bootstrap,
                level=level,
                seed=seed,
            )
            boot = joint.fits["model_size"].bootstrap
            assert boot is not None  # bootstrap_joint gives every fit its Bootstrap
            samples = boot.samples
        xs = [p.x for p in fit.points if p.x is not None]  # a model-size fit: every point has x
        dfs = [p.data_size for p in fit.points]
        laws[method] = _MethodLaw(dict(fit.params), samples, (min(xs), max(xs)), (min(dfs), max(dfs)))
    missing = [METHOD_NAMES[m] for m in METHODS if m not in laws]
    if len(laws) < 2:
        raise Missing(
            f"{task}: advice needs model-size fits of at least two methods; have "
            f"{[METHOD_NAMES[m] for m in laws] or 'none'}. " + " ".join(warnings)
        )
    if missing:
        warnings.append(
            f"no model-size law for {', '.join(missing)}: compared only {', '.join(METHOD_NAMES[m] for m in laws)}"
        )
    return laws


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = 50.0 * (1.0 - level)
    return float(np.percentile(values, tail)), float(np.percentile(values, 100.0 - tail))


def _regimes(laws: Mapping[str, _MethodLaw], x: float, crossings: list[Crossing]) -> list[Regime]:
    """Return the lower envelope of the laws at x as ranges of Df where one method is best."""
    edges = sorted({c.data_size for c in crossings if c.data_size is not None})
    bounds = [SCAN_BOUNDS[0], *edges, SCAN_BOUNDS[1]]
    regimes: list[Regime] = []
    for lo, hi in pairwise(bounds):
        mid = float(np.sqrt(lo * hi))
        best = min(laws, key=lambda m: float(predict("multiplicative", laws[m].params, x, mid)))
        if regimes and regimes[-1].method == best:
            regimes[-1] = Regime(best, regimes[-1].low, hi)
        else:
            regimes.append(Regime(best, lo, hi))
    first, last = regimes[0], regimes[-1]
    regimes[0] = Regime(first.method, None, first.high)
    regimes[-1] = Regime(last.method, regimes[-1].low if len(regimes) > 1 else None, None)
    return regimes


def advise(
    task: str,
    model_size: float,
    budget_examples: float,
    fitted: FittedResults | None = None,
    from_paper: bool = False,
    bootstrap: int = 200,
    level: float = 0.9,
    seed: int = 0,
) -> Advice:
    """Return the method the model-size laws predict is best at (``model_size``, ``budget_examples``).

    Laws come from ``fitted`` (a results directory) or, with ``from_paper``, from Table 4.
    ``bootstrap`` replicates of the joint procedure give ``level`` intervals (0: none).
    """
    if model_size <= 0 or budget_examples <= 0:
        raise UserError(f"--model-size and --budget-examples must be > 0; got {model_size!r}, {budget_examples!r}")
    warnings: list[str] = []
    if from_paper:
        laws, source = _paper_laws(task), "the paper's Table 4 (X: parameters, Df: examples)"
    elif fitted is None:
        raise UserError("advise needs --results DIR (fitted laws from your runs) or --from-paper (Table 4)")
    else:
        laws = _fitted_laws(fitted, task, bootstrap, level, seed, warnings)
        source = f"fits to {fitted.source or 'the results'}"
    x, df = float(model_size), float(budget_examples)
    predictions = []
    for method, law in laws.items():
        loss = float(predict("multiplicative", law.params, x, df))
        low = high = None
        if law.samples:
            low, high = _interval(np.array([predict("multiplicative", s, x, df) for s in law.samples]), level)
        predictions.append(Prediction(method, loss, low, high))
    predictions.sort(key=lambda p: p.loss)
    crossings = []
    for pair in PAIRS:
        if not all(m in laws for m in pair):
            continue
        a, b = laws[pair[0]], laws[pair[1]]
        value = float(critical_data_size(("multiplicative", a.params), ("multiplicative", b.params), x, SCAN_BOUNDS)[0])
        low = high = share = None
        if a.samples and b.samples:
            sampled = np.array(
                [
                    critical_data_size(("multiplicative", sa), ("multiplicative", sb), x, SCAN_BOUNDS, grid=160)[0]
                    for sa, sb in zip(a.samples, b.samples)
                ]
            )
            crossed = sampled[~np.isnan(sampled)]
            share = float(len(crossed) / len(sampled))
            if len(crossed) >= 2:
                low, high = _interval(crossed, level)
        crossings.append(Crossing(pair, None if np.isnan(value) else value, low, high, share))
    for method, law in laws.items():
        for value, rng, what in ((x, law.x_range, "model size"), (df, law.df_range, "finetuning data size")):
            if rng and not rng[0] <= value <= rng[1]:
                warnings.append(
                    f"{METHOD_NAMES[method]}: {what} {human(value)} is outside the fitted range "
                    f"[{human(rng[0])}, {human(rng[1])}]; the prediction extrapolates the law"
                )
    return Advice(
        task,
        x,
        df,
        source,
        predictions[0].method,
        predictions,
        crossings,
        _regimes(laws, x, crossings),
        level if any(p.low is not None for p in predictions) else None,
        warnings,
    )


def _span(low: float | None, high: float | None, fmt=sci) -> str:
    return "" if low is None else f" [{fmt(low)}, {fmt(high)}]"


def format_advice(advice: Advice) -> str:
    """Return the advice as a short human-readable report."""
    lines = [
        (
            f"Task {advice.task}: model size {human(advice.model_size)} parameters, "
            f"{human(advice.budget_examples)} finetuning examples (laws: {advice.source})."
        ),
        f"Predicted best method: {METHOD_NAMES[advice.best]}.",
        "",
        "Predicted test loss (nats/token)" + (f", {advice.level:.0%} bootstrap intervals:" if advice.level else ":"),
    ]
    for p in advice.predictions:
        marker = "  <- best" if p.method == advice.best else ""
        lines.append(f"  {METHOD_NAMES[p.method]:<7} {p.loss:.4f}{_span(p.low, p.high, '{:.4f}'.format)}{marker}")
    lines += ["", f"Best method by finetuning data size at {human(advice.model_size)} parameters:"]
    for r in advice.regimes:
        lo = "0" if r.low is None else human(r.low)
        hi = "inf" if r.high is None else human(r.high)
        here = "  <- your budget" if (r.low or 0) <= advice.budget_examples < (r.high or np.inf) else ""
        lines.append(f"  {lo:>6} - {hi:<6} examples: {METHOD_NAMES[r.method]}{here}")
    lines += ["", "Critical data sizes (where two methods tie):"]
    for c in advice.crossings:
        if c.data_size is None:
            low, high = sci(SCAN_BOUNDS[0]), sci(SCAN_BOUNDS[1])
            lines.append(f"  {pair_name(c.pair)}: the laws do not cross between {low} and {high} examples")
            continue
        share = (
            ""
            if c.crossed_share is None or c.crossed_share == 1
            else f" (laws cross in {c.crossed_share:.0%} of replicates)"
        )
        lines.append(f"  {pair_name(c.pair)}: {sci(c.data_size)} examples{_span(c.low, c.high)}{share}")
    if advice.warnings:
        lines += ["", "Notes:"] + [f"  - {w}" for w in advice.warnings]
    return "\n".join(lines)
