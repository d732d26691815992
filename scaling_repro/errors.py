"""Errors a user can fix. The CLI prints them as one message and exits 2, never a traceback:
:class:`UserError`, and the file system's refusals (disk full, read-only, no permission, a file
where a folder must be), which :func:`filesystem_error` puts in one line."""

from __future__ import annotations

import errno
import io
import os
import re
from pathlib import PurePath


class UserError(Exception):
    """Bad input from the user (recipe, file, flag, data): the message says what and how to fix it."""


class RecipeError(UserError):
    """A recipe (or an override of one) that does not validate."""


def one_line(err: BaseException) -> str:
    """Return ``err`` as one line, ``Type: message`` (a pydantic ValidationError by its first
    error), for messages that name a damaged file."""
    from pydantic import ValidationError

    text = str(err)
    if isinstance(err, ValidationError) and err.errors():
        first = err.errors()[0]
        text = first["msg"] + (f" at {'.'.join(map(str, first['loc']))}" if first["loc"] else "")
    text = " ".join(text.split())
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__


# What to do about each refusal of the file system that filesystem_error puts in one line.
_FILESYSTEM_HINTS = {
    errno.ENOSPC: "free space there or write elsewhere",
    errno.EDQUOT: "free space in your quota or write elsewhere",
    errno.EROFS: "the file system is mounted read-only: write elsewhere",
    errno.EACCES: "check the permissions of the folder, or write elsewhere",
    errno.EPERM: "check the permissions of the folder, or write elsewhere",
    errno.ENOTDIR: "a part of the path is a file where a folder must be",
    errno.EISDIR: "a folder is where a file must be",
    errno.EEXIST: "a file is where a folder must be, or the other way round",
}
# Local names under which the frames of a traceback hold the file they were writing: ours
# (atomic writes), pathlib's write_text (self), torch.save (f), safetensors' save_file (filename),
# ``with open(...) as handle`` (an open file: its name).
_PATH_LOCALS = ("path", "filename", "file", "f", "tmp", "self", "handle", "save_directory")


def _path_in_traceback(err: BaseException) -> str:
    """Return the file the innermost frame of ``err``'s traceback that names one was working
    on, or '' (an OSError of a failed write() carries no file name; torch's and safetensors'
    wrappers carry none either)."""
    frames = []
    tb = err.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        local_vars = frame.f_locals
        for name in _PATH_LOCALS:
            value = local_vars.get(name)
            if isinstance(value, io.IOBase):
                value = getattr(value, "name", None)
            if isinstance(value, PurePath) or (isinstance(value, str) and os.sep in value and "\n" not in value):
                return str(value)
    return ""


def _errno_text(number: int) -> str:
    return f"{os.strerror(number)} ({errno.errorcode.get(number, number)})"


def _one_filesystem_error(err: BaseException) -> str | None:
    text = " ".join(str(err).split())
    ours = type(err).__module__.startswith("scaling_repro.")
    if isinstance(err, OSError) and ours and type(err).__str__ is not OSError.__str__:
        return text  # one of ours that says it in one line (fileio.NotAPlainFile)
    if isinstance(err, OSError) and err.errno in _FILESYSTEM_HINTS:
        path = err.filename if err.filename is not None else _path_in_traceback(err)
        if err.filename2 is not None:
            path = f"{path} -> {err.filename2}"
        where = f"{os.fsdecode(path)}: " if path else ""
        return f"{where}{_errno_text(err.errno)}; {_FILESYSTEM_HINTS[err.errno]}"
    wrapper = type(err).__name__ == "SafetensorError"
    if isinstance(err, RuntimeError) and not wrapper:
        wrapper = any(mark in text for mark in ("inline_container", "enforce fail", "No space left"))
    if not wrapper:
        return None
    named = re.search(r' at path "([^"]+)"', text)  # safetensors: '... (os error 28) at path "..."'
    path = _path_in_traceback(err) or (named.group(1) if named else "")
    where = f"{path}: " if path else ""
    code = re.search(r"\b(?:code: |os error )(\d+)", text)  # safetensors: IoError(Os { code: 28, ... })
    if code and int(code.group(1)) in _FILESYSTEM_HINTS:
        number = int(code.group(1))
        return f"{where}{_errno_text(number)}; {_FILESYSTEM_HINTS[number]}"
    if "No space left" in text:
        return f"{where}{_errno_text(errno.ENOSPC)}; {_FILESYSTEM_HINTS[errno.ENOSPC]}"
    if "deserializ" in text:  # safetensors reading a damaged file
        return f"{where}{type(err).__name__}: {text[:300]}"
    detail = text.split("] . ", 1)[-1][:200]  # torch: "[enforce fail at inline_container.cc:672] . ..."
    return f"{where}could not write the file ({detail}); is the file system full or read-only?"


def filesystem_error(err: BaseException) -> str | None:
    """Return ``err`` as one line naming the path and what went wrong, when the file system
    refused (disk full, quota, read-only, permissions, a file where a folder must be: OSError
    with such an errno, safetensors' SafetensorError, torch's ``[enforce fail at
    inline_container.cc]`` RuntimeError, ...), also when it is the ``__cause__`` of ``err``;
    else None (a bug, for a traceback)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        message = _one_filesystem_error(current)
        if message is not None:
            return message
        current = current.__cause__
    return None
