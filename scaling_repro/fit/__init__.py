"""Scaling-law fitting: the paper's laws, the joint procedure, held-out evaluation,
critical data sizes and bootstrap intervals. Imports no torch; works on any results table.

    from scaling_repro.fit import fit_law
    fit = fit_law(x, data_size, loss, law="multiplicative", residual="linear", huber_delta=1e-3)
    fit.params, fit.predict(x, data_size), fit.objective

From results: ``points_from_records(records, "model_size", task, method).fit()``; the paper's
procedure: ``fit_joint({"model_size": ..., "pretrain_data": ..., "pet_size": ...})``.
"""

from scaling_repro.fit.critical import critical_data_size, critical_power_law
from scaling_repro.fit.fitting import fit_law
from scaling_repro.fit.joint import bootstrap_joint, fit_joint
from scaling_repro.fit.laws import LAWS, get_law, predict
from scaling_repro.fit.points import FitPoints, holdout_mask, points_from_records, points_from_table
from scaling_repro.fit.record import Bootstrap, FitPoint, JointFit, LawFit, load_fits, save_fits
from scaling_repro.fit.uncertainty import bootstrap_fit

__all__ = [
    "LAWS",
    "Bootstrap",
    "FitPoint",
    "FitPoints",
    "JointFit",
    "LawFit",
    "bootstrap_fit",
    "bootstrap_joint",
    "critical_data_size",
    "critical_power_law",
    "fit_joint",
    "fit_law",
    "get_law",
    "holdout_mask",
    "load_fits",
    "points_from_records",
    "points_from_table",
    "predict",
    "save_fits",
]
