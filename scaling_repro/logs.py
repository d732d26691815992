"""Log lines of this package to stderr: one set-up for the command line and the processes it
starts. A leaf: imports nothing of this package."""

from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (not the stream at creation time), so that a
    redirected or replaced stderr (tests, notebooks) never leaves a handler on a closed file."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(verbose: bool = False) -> None:
    """Log INFO (DEBUG with ``verbose``) lines of this package to stderr, once per process."""
    logger = logging.getLogger("scaling_repro")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
