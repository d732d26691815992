"""fileio.open_append_text, how a run appends to a file of its folder: never through a
symbolic link, never blocking on a FIFO, created with the team's modes."""

from __future__ import annotations

import os
import signal
import stat

import pytest

from scaling_repro.fileio import NotAPlainFile, current_umask, open_append_text


def test_appending_through_a_symlink_is_refused_with_one_line_naming_it(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    (tmp_path / "run.log").symlink_to(outside)
    with pytest.raises(NotAPlainFile) as err:
        open_append_text(tmp_path / "run.log")
    assert (
        str(err.value) == f"{tmp_path / 'run.log'} is a symbolic link; refusing to write through it (remove the link)"
    )
    assert outside.read_text() == "keep\n"


def test_a_dangling_symlink_does_not_create_its_target(tmp_path):
    (tmp_path / "run.log").symlink_to(tmp_path / "created-elsewhere")
    with pytest.raises(NotAPlainFile):
        open_append_text(tmp_path / "run.log")
    assert not (tmp_path / "created-elsewhere").exists()


def test_a_fifo_is_refused_at_once_instead_of_blocking(tmp_path):
    os.mkfifo(tmp_path / "run.log")
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("open blocked on the FIFO"))
    signal.alarm(10)
    try:
        with pytest.raises(NotAPlainFile, match="FIFO"):
            open_append_text(tmp_path / "run.log")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_plain_file_is_appended_to_and_created_with_the_team_s_mode(tmp_path):
    path = tmp_path / "run.log"
    for line in ("one\n", "two\n"):
        with open_append_text(path) as handle:
            handle.write(line)
    assert path.read_text() == "one\ntwo\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()
