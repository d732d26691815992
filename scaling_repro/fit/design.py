"""A fitting problem as arrays: the points, the law's terms, which parameters are free.

Every law is ``L = sum_j c_j * prod_q input_q^-theta_q`` with positive coefficients ``c`` and
exponents ``theta``. A :class:`Design` stores, per term ``j`` and point ``i``, the log inputs
that multiply each free exponent, so that the fitter evaluates a whole law (or several laws that
share parameters, as the paper's joint procedure does) with a few array operations.

Conditioning: inputs are divided internally by their geometric mean (``X / X_ref``) so that
coefficients are of the order of the loss and the intercept does not trade off against the
exponent; :meth:`Design.raw_params` converts back to raw units (``A = c * X_ref^alpha * ...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from scaling_repro.errors import UserError
from scaling_repro.fit.laws import Law


@dataclass(frozen=True)
class Group:
    """Points that get their own copy of the law's non-shared parameters (one scaling factor)."""

    name: str
    x: np.ndarray | None
    data_size: np.ndarray
    loss: np.ndarray


@dataclass(frozen=True)
class Design:
    """Arrays of one fitting problem (see module docstring); build it with :func:`build_design`."""

    loss: np.ndarray  # (n,) observed losses
    exponents: tuple[str, ...]  # free exponent names (p)
    coefficients: tuple[str, ...]  # free coefficient names (kf)
    mask: np.ndarray  # (k, n) 1 where term j applies to point i
    features: np.ndarray  # (k, n, p) centred log input multiplying each free exponent
    log_offset: np.ndarray  # (k, n) -sum of fixed exponents * centred log input
    coef_index: np.ndarray  # (k,) index into `coefficients`, -1 for a fixed coefficient
    coef_fixed: np.ndarray  # (k,) value of a fixed coefficient (raw units), else nan
    term_coefficient: tuple[str, ...]  # (k,) parameter name of each term's coefficient
    term_refs: tuple[tuple[tuple[str, float], ...], ...]  # (k,) (exponent name, log reference)
    fixed: Mapping[str, float]  # fixed parameters by name
    coef_matrix: np.ndarray  # (kf, k) 1 where free coefficient f multiplies term j

    @property
    def n_points(self) -> int:
        return len(self.loss)

    @property
    def n_free(self) -> int:
        return len(self.exponents) + len(self.coefficients)

    @property
    def fixed_coefs(self) -> np.ndarray:
        """Return the (k,) fixed coefficient of each term, 0 for terms with a free coefficient."""
        return np.nan_to_num(self.coef_fixed)

    def raw_params(self, theta: np.ndarray, coefs: np.ndarray) -> dict[str, float]:
        """Return every parameter (free and fixed) by name in raw units.

        ``theta`` are the free exponents, ``coefs`` the free coefficients in internal units.
        """
        values = dict(self.fixed)
        values.update(zip(self.exponents, map(float, theta)))
        for term, index in enumerate(self.coef_index):
            if index < 0:
                continue
            shift = sum(values[name] * log_ref for name, log_ref in self.term_refs[term])
            values[self.term_coefficient[term]] = float(coefs[index] * np.exp(shift))
        return values

    def internal(self, params: Mapping[str, float]) -> np.ndarray:
        """Return the optimizer's vector ``(theta, c)`` for raw parameters (inverse of raw_params)."""
        values = {**self.fixed, **params}
        theta = np.array([values[name] for name in self.exponents], float)
        coefs = np.ones(len(self.coefficients))
        for term, index in enumerate(self.coef_index):
            if index >= 0:
                shift = sum(values[name] * log_ref for name, log_ref in self.term_refs[term])
                coefs[index] = values[self.term_coefficient[term]] * np.exp(-shift)
        return np.concatenate([theta, coefs])


def param_name(name: str, group: str, shared: bool, n_groups: int) -> str:
    """Return the name of law parameter ``name`` in ``group``: ``alpha`` or ``alpha[group]``."""
    return name if shared or n_groups == 1 else f"{name}[{group}]"


def build_design(
    law: Law,
    groups: Sequence[Group],
    shared: Sequence[str] = (),
    fixed: Mapping[str, float] | None = None,
) -> Design:
    """Return the Design of fitting ``law`` to ``groups``.

    Parameters in ``shared`` (e.g. ``("beta", "E")``) are one parameter over all groups; the
    others get one copy per group, named ``name[group]`` when there are several groups.
    ``fixed`` maps parameter names to values held constant (raw units).
    """
    fixed = dict(fixed or {})
    n_groups = len(groups)
    names_in_use = {param_name(p, g.name, p in shared, n_groups) for g in groups for p in law.params}
    unknown = sorted(set(fixed) - names_in_use)
    if unknown:
        raise UserError(f"fixed parameters {unknown} are not parameters of this fit; known: {sorted(names_in_use)}")
    for name, value in fixed.items():
        if not np.isfinite(value) or (name.split("[")[0] in law.coefficients and value < 0):
            raise UserError(f"fixed parameter {name}={value!r}: must be finite (and >= 0 for a coefficient)")

    loss = np.concatenate([np.asarray(g.loss, float) for g in groups])
    n = len(loss)
    starts = np.cumsum([0] + [len(g.loss) for g in groups])
    log_inputs = []
    for g in groups:
        inputs = {"df": np.log(np.asarray(g.data_size, float))}
        if g.x is not None:
            inputs["x"] = np.log(np.asarray(g.x, float))
        log_inputs.append(inputs)

    # One term per (group, law term), except that a shared coefficient without powers (E)
    # is a single term over all points.
    rows: list[tuple[str, list[int], tuple[tuple[str, str], ...]]] = []
    for term in law.terms:
        coef_shared = term.coefficient in shared
        if coef_shared and not term.powers:
            rows.append((term.coefficient, list(range(n_groups)), ()))
            continue
        for gi, g in enumerate(groups):
            coef = param_name(term.coefficient, g.name, coef_shared, n_groups)
            powers = tuple((param_name(e, g.name, e in shared, n_groups), src) for e, src in term.powers)
            rows.append((coef, [gi], powers))

    exponents = tuple(dict.fromkeys(e for _, _, powers in rows for e, _ in powers if e not in fixed))
    coefficients = tuple(dict.fromkeys(c for c, _, _ in rows if c not in fixed))
    k, p = len(rows), len(exponents)
    mask = np.zeros((k, n))
    features = np.zeros((k, n, p))
    log_offset = np.zeros((k, n))
    coef_index = np.full(k, -1)
    coef_fixed = np.full(k, np.nan)
    term_refs = []

    # Reference (geometric mean) per (coefficient, exponent): over every point the coefficient
    # applies to, so that terms sharing a coefficient convert to raw units the same way.
    # Terms with a fixed coefficient are not centred (their coefficient is given in raw units).
    refs: dict[tuple[str, str], float] = {}
    for coef, gis, powers in rows:
        if coef in fixed:
            continue
        for exponent, src in powers:
            values = np.concatenate([log_inputs[gi][src] for gi in gis])
            refs.setdefault((coef, exponent), float(np.mean(values)))
    for j, (coef, gis, powers) in enumerate(rows):
        for gi in gis:
            mask[j, starts[gi] : starts[gi + 1]] = 1.0
        if coef in fixed:
            coef_fixed[j] = fixed[coef]
        else:
            coef_index[j] = coefficients.index(coef)
        term_ref = []
        for exponent, src in powers:
            log_ref = refs.get((coef, exponent), 0.0)
            term_ref.append((exponent, log_ref))
            for gi in gis:
                centred = log_inputs[gi][src] - log_ref
                span = slice(starts[gi], starts[gi + 1])
                if exponent in fixed:
                    log_offset[j, span] -= fixed[exponent] * centred
                else:
                    features[j, span, exponents.index(exponent)] = centred
        term_refs.append(tuple(term_ref))

    return Design(
        loss=loss,
        exponents=exponents,
        coefficients=coefficients,
        mask=mask,
        features=features,
        log_offset=log_offset,
        coef_index=coef_index,
        coef_fixed=coef_fixed,
        term_coefficient=tuple(c for c, _, _ in rows),
        term_refs=tuple(term_refs),
        fixed=fixed,
        coef_matrix=(coef_index[None, :] == np.arange(len(coefficients))[:, None]).astype(float),
    )
