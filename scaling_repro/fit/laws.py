"""The paper's three scaling laws, as data: which coefficient multiplies which powers.

- ``single``:          L(Df)    = A * Df^-beta + E                      (Fig. 1, one fit per model)
- ``multiplicative``:  L(X, Df) = A * X^-alpha * Df^-beta + E           (Eq. 1, the paper's law)
- ``additive``:        L(X, Df) = A * X^-alpha + B * Df^-beta + E       (Hoffmann et al. 2022)

X is the other scaling factor (model parameters, pretraining tokens or PET parameters) and Df
the finetuning data size, both in raw units. Every law is a sum of terms ``c * prod(input^-p)``
with a positive coefficient ``c`` (A, B, E) and exponents ``p`` (alpha, beta): the fitter
exploits that structure (exponents enter non-linearly, coefficients linearly).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from scaling_repro.errors import UserError

# The order parameters are reported in.
PARAM_ORDER = ("A", "alpha", "B", "beta", "E")


@dataclass(frozen=True)
class Term:
    """One summand: ``coefficient * prod(input ** -exponent for exponent, input in powers)``."""

    coefficient: str
    powers: tuple[tuple[str, str], ...]  # (exponent name, "x" or "df")


@dataclass(frozen=True)
class Law:
    """A scaling law: its name, its terms and the formula it stands for."""

    name: str
    terms: tuple[Term, ...]
    formula: str

    @property
    def exponents(self) -> tuple[str, ...]:
        """Exponent names (alpha, beta) in report order."""
        names = {name for term in self.terms for name, _ in term.powers}
        return tuple(p for p in PARAM_ORDER if p in names)

    @property
    def coefficients(self) -> tuple[str, ...]:
        """Coefficient names (A, B, E) in report order."""
        names = {term.coefficient for term in self.terms}
        return tuple(p for p in PARAM_ORDER if p in names)

    @property
    def params(self) -> tuple[str, ...]:
        """All parameter names in report order, e.g. ('A', 'alpha', 'beta', 'E')."""
        names = set(self.exponents) | set(self.coefficients)
        return tuple(p for p in PARAM_ORDER if p in names)

    @property
    def uses_x(self) -> bool:
        """True when the law has a factor X besides the finetuning data size."""
        return any(source == "x" for term in self.terms for _, source in term.powers)


LAWS: dict[str, Law] = {
    "single": Law(
        "single",
        (Term("A", (("beta", "df"),)), Term("E", ())),
        "L = A * Df^-beta + E",
    ),
    "multiplicative": Law(
        "multiplicative",
        (Term("A", (("alpha", "x"), ("beta", "df"))), Term("E", ())),
        "L = A * X^-alpha * Df^-beta + E",
    ),
    "additive": Law(
        "additive",
        (Term("A", (("alpha", "x"),)), Term("B", (("beta", "df"),)), Term("E", ())),
        "L = A * X^-alpha + B * Df^-beta + E",
    ),
}


def get_law(name: str) -> Law:
    """Return the law called ``name``; a UserError lists the known laws otherwise."""
    try:
        return LAWS[name]
    except (KeyError, TypeError):
        raise UserError(f"law: got {name!r}; allowed: {', '.join(map(repr, LAWS))}") from None


def predict(law: Law | str, params: Mapping[str, float], x, data_size) -> np.ndarray:
    """Return the law's predicted loss at each (x, data_size) pair (raw units) as a float array.

    ``x`` may be None for the single-variable law. Inputs broadcast against each other.
    """
    law = get_law(law) if isinstance(law, str) else law
    missing = [p for p in law.params if p not in params]
    if missing:
        raise UserError(f"params for law {law.name!r} lack {missing}; got {sorted(params)}")
    inputs = {"df": np.asarray(data_size, dtype=float)}
    if law.uses_x:
        if x is None:
            raise UserError(f"law {law.name!r} needs x values (it models {law.formula})")
        inputs["x"] = np.asarray(x, dtype=float)
    total = np.zeros(np.broadcast_shapes(*(v.shape for v in inputs.values())))
    for term in law.terms:
        log_power = sum(params[exponent] * np.log(inputs[source]) for exponent, source in term.powers)
        total = total + params[term.coefficient] * np.exp(-log_power)
    return total
