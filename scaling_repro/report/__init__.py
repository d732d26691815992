"""Reports: every figure and table a results directory supports (:func:`build_report`), and the
report of a study (:mod:`.study_report`).

    from scaling_repro.report import build_report
    report = build_report("runs", "report")         # report/index.md, figures/, tables/, fits.json
    report.missing                                   # {"Figure 3": ["... which runs are missing"]}
"""

from scaling_repro.report.results_report import Report, build_report

__all__ = ["Report", "build_report"]
