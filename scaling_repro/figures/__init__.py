"""The paper's figures (1-14), tables (2, 4, 5, 6, 7), a report and ``advise``, from RunRecords only.

    from scaling_repro.figures import build_report
    report = build_report("runs", "report")         # report/index.md, figures/, tables/, fits.json
    report.missing                                   # {"Figure 3": ["... which runs are missing"]}

    from scaling_repro.figures import Study, render_figure, make_table, advise
    study = Study.from_dir("runs")                   # experiments found and joint fits, cached
    render_figure(study, 2, "out")                   # FigureResult(files, notes)
    make_table(study, 4, compare_paper=True).to_markdown()
    advise("wmt14_en_de", 1e9, 50_000, study=study)  # Advice(best, predictions, crossings, regimes)

Imports no torch; matplotlib is imported only by the modules that draw (names load lazily).
"""

from importlib import import_module

_EXPORTS = {
    "Study": "scaling_repro.figures.study",
    "Missing": "scaling_repro.figures.experiments",
    "find_experiment": "scaling_repro.figures.experiments",
    "FIGURES": "scaling_repro.figures.registry",
    "FigureOptions": "scaling_repro.figures.registry",
    "FigureResult": "scaling_repro.figures.registry",
    "render_figure": "scaling_repro.figures.registry",
    "TABLES": "scaling_repro.figures.tables",
    "make_table": "scaling_repro.figures.tables",
    "Table": "scaling_repro.figures.tabular",
    "Report": "scaling_repro.figures.report",
    "build_report": "scaling_repro.figures.report",
    "Advice": "scaling_repro.figures.advice",
    "advise": "scaling_repro.figures.advice",
    "format_advice": "scaling_repro.figures.advice",
    "write_synthetic_results": "scaling_repro.figures.synthetic",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'scaling_repro.figures' has no attribute {name!r}")
