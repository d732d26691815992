"""Log lines of this package to stderr: one set-up for the command line and the processes it
starts. A leaf: imports only :mod:`scaling_repro.ranks`."""

from __future__ import annotations

import logging
import sys

from scaling_repro.ranks import current_process


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
    """Log INFO (DEBUG with ``verbose``) lines of this package to stderr, once per process;
    ranks other than 0 of a distributed run log warnings and errors only (eight GPUs would
    print every line eight times)."""
    logger = logging.getLogger("scaling_repro")
    level = logging.DEBUG if verbose else logging.INFO
    logger.setLevel(level if current_process().is_main else max(level, logging.WARNING))
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
