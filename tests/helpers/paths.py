"""Where the tests find the repository, their data files and the helper scripts they start.

Every path a test builds to another file of the repository starts here, so that moving a test
module between folders of ``tests/`` changes nothing it reads.
"""

from __future__ import annotations

import os
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
HELPERS = TESTS / "helpers"
FIXTURES = TESTS / "fixtures"  # data files (see fixtures/README.md)
SNAPSHOTS = TESTS / "snapshots"  # expected outputs
RECIPES = REPO / "recipes"


def pythonpath(*first: Path | str) -> str:
    """A ``PYTHONPATH`` for a child interpreter: ``first``, then the repository (so that it
    imports ``scaling_repro`` and ``tests.helpers``), then the caller's ``PYTHONPATH``."""
    paths = [*map(str, first), str(REPO), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in paths if p)
