"""Log lines of this package to stderr: one set-up for the command line and the processes it
starts, and for a long command a log file beside its output.

Lines reach the terminal through tqdm, so that a line written while a progress bar is open
appears above the bar instead of inside it. A leaf: imports only :mod:`scaling_repro.ranks`;
tqdm is imported when the first line is written, which keeps every command's start fast.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from scaling_repro.ranks import current_process

PACKAGE_LOGGER = "scaling_repro"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Other libraries' lines that configure_logging keeps off the terminal, with the level they
# need to reach it. Accelerate logs every file of every checkpoint at INFO (our own line per
# checkpoint is enough), and warns at every save of a tied-embedding model that it dropped the
# tied copy, which reloads correctly (full-model resume and best-checkpoint tests cover it).
LIBRARY_LEVELS = {
    "accelerate.accelerator": logging.WARNING,
    "accelerate.checkpointing": logging.WARNING,
    "accelerate.utils.other": logging.ERROR,
}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (not the stream at creation time), so that a
    redirected or replaced stderr (tests, notebooks) never leaves a handler on a closed file,
    and writes with ``tqdm.write``, which clears open progress bars, writes the line and draws
    them again below it."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own policy: report, never raise
            self.handleError(record)


def _terminal_handler() -> _StderrHandler | None:
    """Return the package logger's stderr handler, or None before :func:`configure_logging`."""
    return next((h for h in logging.getLogger(PACKAGE_LOGGER).handlers if isinstance(h, _StderrHandler)), None)


def configure_logging(verbose: bool = False) -> None:
    """Log INFO (DEBUG with ``verbose``) lines of this package to stderr, once per process;
    ranks other than 0 of a distributed run log warnings and errors only (eight GPUs would
    print every line eight times). Also sets :data:`LIBRARY_LEVELS`. Returns nothing."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    level = logging.DEBUG if verbose else logging.INFO
    logger.setLevel(level if current_process().is_main else max(level, logging.WARNING))
    if _terminal_handler() is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
        logger.addHandler(handler)
    for name, library_level in LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(library_level)


def _open_log_file(path: Path) -> TextIO | None:
    """Open ``path`` for appending as :func:`scaling_repro.fileio.open_append_text` does (this
    leaf cannot import it): never through a symbolic link, never blocking on a FIFO. Return
    None with a one-line warning naming the path where it is anything but a regular file."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as err:
        if os.path.islink(path):
            reason = "it is a symbolic link (remove it)"
        elif err.errno == errno.ENXIO:
            reason = "it is a FIFO or socket (remove it)"
        else:
            reason = err.strerror or str(err)
        logging.getLogger(PACKAGE_LOGGER).warning("not logging to %s: %s", path, reason)
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        logging.getLogger(PACKAGE_LOGGER).warning("not logging to %s: it is not a regular file (remove it)", path)
        return None
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a", encoding="utf-8")


@contextlib.contextmanager
def log_to_file(path: str | Path) -> Iterator[Path]:
    """While inside, append every line this package logs to ``path`` too (created with its
    directory), dated; yield the path. The file gets the lines the terminal leaves out under
    :func:`terminal_shows_warnings_only`. A symbolic link, FIFO or folder planted at ``path``
    is never written through: lines then reach the terminal only, after a warning naming it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = _open_log_file(path)
    if stream is None:
        yield path
        return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT, "%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger(PACKAGE_LOGGER)
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
        stream.close()


@contextlib.contextmanager
def terminal_shows_warnings_only(enabled: bool = True) -> Iterator[None]:
    """While inside (when ``enabled``), the terminal shows this package's warnings and errors
    only; other handlers, such as a :func:`log_to_file` file, still get every line."""
    handler = _terminal_handler()
    if not enabled or handler is None:
        yield
        return
    previous = handler.level
    handler.setLevel(max(previous, logging.WARNING))
    try:
        yield
    finally:
        handler.setLevel(previous)
