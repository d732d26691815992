"""Drawing: the paper's figures (1-14) and tables (2, 4, 5, 6, 7) from a :class:`~scaling_repro.analysis.FittedResults`.

    from scaling_repro.analysis import FittedResults
    from scaling_repro.figures import render_figure, make_table
    fitted = FittedResults.from_dir("runs")                   # experiments found and joint fits, cached
    render_figure(fitted, 2, "out")                   # FigureResult(files, notes)
    make_table(fitted, 4, compare_paper=True).to_markdown()

Imports no torch; matplotlib is imported only by the modules that draw (names load lazily).
"""

from importlib import import_module

_EXPORTS = {
    "FIGURES": "scaling_repro.figures.registry",
    "FigureOptions": "scaling_repro.figures.registry",
    "FigureResult": "scaling_repro.figures.registry",
    "render_figure": "scaling_repro.figures.registry",
    "TABLES": "scaling_repro.figures.tables",
    "make_table": "scaling_repro.figures.tables",
    "Table": "scaling_repro.figures.tabular",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'scaling_repro.figures' has no attribute {name!r}")
