"""Scaling-law fitting (issue 4): the paper's laws, the joint procedure, held-out evaluation,
critical data sizes and bootstrap intervals. Imports no torch; works on any results table.

    from scaling_repro.fit import fit_law
    fit = fit_law(x, data_size, loss, law="multiplicative", residual="linear", huber_delta=1e-3)
    fit.params, fit.predict(x, data_size), fit.objective
"""

from scaling_repro.fit.fitting import fit_law
from scaling_repro.fit.laws import LAWS, get_law, predict
from scaling_repro.fit.record import Bootstrap, FitPoint, JointFit, LawFit
from scaling_repro.fit.uncertainty import bootstrap_fit

__all__ = [
    "LAWS", "Bootstrap", "FitPoint", "JointFit", "LawFit", "bootstrap_fit", "fit_law", "get_law", "predict",
]
