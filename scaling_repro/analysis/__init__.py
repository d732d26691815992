"""From results to conclusions: experiments, the study's fits, findings, advice, the paper's numbers.

    from scaling_repro.analysis import FittedResults, advise
    fitted = FittedResults.from_dir("runs")                   # experiments found and joint fits, cached
    advise("wmt14_en_de", 1e9, 50_000, fitted=fitted)  # Advice(best, predictions, crossings, regimes)

Imports no torch and draws nothing: it reads RunRecords and fits laws (:mod:`scaling_repro.fit`).
Names load lazily, so importing one module does not import them all.
"""

from importlib import import_module

_EXPORTS = {
    "FittedResults": "scaling_repro.analysis.fitted_results",
    "Missing": "scaling_repro.analysis.experiments",
    "find_experiment": "scaling_repro.analysis.experiments",
    "Advice": "scaling_repro.analysis.advice",
    "advise": "scaling_repro.analysis.advice",
    "format_advice": "scaling_repro.analysis.advice",
    "write_synthetic_results": "scaling_repro.analysis.synthetic",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'scaling_repro.analysis' has no attribute {name!r}")
