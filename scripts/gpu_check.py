"""The one script a GPU runs first: every check of scaling_repro.gpu_checks, each in its own
try, its row written to OUT/gpu.md and OUT/gpu.json as soon as it is measured.

    python scripts/gpu_check.py --out benchmarks        # one CUDA GPU, <= 8 minutes on an H100
    python scripts/gpu_check.py --smoke --out /tmp/gc   # every check's code path on a CPU, tiny sizes
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from scaling_repro.gpu_checks.checks import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
