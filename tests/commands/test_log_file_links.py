"""A command's log file (reproduce.log, logs.log_to_file) is never written through a symbolic
link planted at its path: lines reach the terminal only, after one warning naming it."""

from __future__ import annotations

import logging

from scaling_repro.logs import configure_logging, log_to_file


def test_a_log_file_that_is_a_symlink_is_not_written_through(tmp_path, capsys):
    configure_logging()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    (tmp_path / "reproduce.log").symlink_to(outside)
    with log_to_file(tmp_path / "reproduce.log"):
        logging.getLogger("scaling_repro.test").warning("stage done")
    err = capsys.readouterr().err
    assert f"not logging to {tmp_path / 'reproduce.log'}: it is a symbolic link" in err
    assert "stage done" in err
    assert outside.read_text() == "keep\n"
