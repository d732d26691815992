"""Results: the RunRecord of each run (:mod:`.record`), the run directory that holds it
(:mod:`.rundir`), walking a results tree (:mod:`.tree`) and renaming run directories to their
spec's run id (:mod:`.migrate`).

Imports no torch: the fitting, analysis and figure stages read results through here.
"""

from scaling_repro.results.record import (
    MAX_RESULT_BYTES,
    RESULT_FILE,
    SCHEMA_VERSION,
    UNREADABLE_HINT,
    ZERO_SHOT_LOSS,
    ResultFile,
    RunRecord,
    iter_result_files,
    load_results,
    read_record,
    read_result,
)
from scaling_repro.results.rundir import (
    DAMAGED_RESULT_FILE,
    FAILED_RESULT_FILE,
    SPEC_FILE,
    TRACEBACK_FILE,
    RunDir,
    RunState,
    UnreadableResult,
    failed_record,
    find_run_dirs,
    new_record,
)

__all__ = [
    "DAMAGED_RESULT_FILE",
    "FAILED_RESULT_FILE",
    "MAX_RESULT_BYTES",
    "RESULT_FILE",
    "SCHEMA_VERSION",
    "SPEC_FILE",
    "TRACEBACK_FILE",
    "UNREADABLE_HINT",
    "ZERO_SHOT_LOSS",
    "ResultFile",
    "RunDir",
    "RunRecord",
    "RunState",
    "UnreadableResult",
    "failed_record",
    "find_run_dirs",
    "iter_result_files",
    "load_results",
    "new_record",
    "read_record",
    "read_result",
]
