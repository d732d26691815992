"""Log set-up: one per process, INFO lines from rank 0 only, lines above open progress bars,
a log file for the lines a command keeps off the terminal."""

import logging
import re
import sys

import pytest
from tqdm import tqdm

from scaling_repro.logs import LIBRARY_LEVELS, configure_logging, log_to_file, terminal_shows_warnings_only

LINE = re.compile(r"\d\d:\d\d:\d\d (INFO|WARNING) scaling_repro\.test: (.*)")


@pytest.fixture
def terminal(monkeypatch, capsys):
    """This package's log set-up as a command line has it; return a function that returns
    what reached stderr so far."""
    monkeypatch.delenv("RANK", raising=False)
    configure_logging()
    return lambda: capsys.readouterr().err


def test_only_rank_0_logs_info_lines(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "8")
    configure_logging()
    assert logging.getLogger("scaling_repro").level == logging.WARNING
    monkeypatch.setenv("RANK", "0")
    configure_logging()
    assert logging.getLogger("scaling_repro").level == logging.INFO


def test_configure_logging_keeps_accelerate_s_per_checkpoint_lines_off_the_terminal():
    configure_logging()
    assert {name: logging.getLogger(name).level for name in LIBRARY_LEVELS} == {
        "accelerate.accelerator": logging.WARNING,
        "accelerate.checkpointing": logging.WARNING,
        "accelerate.utils.other": logging.ERROR,
    }


def test_a_line_logged_while_a_progress_bar_is_open_starts_a_line_of_its_own(terminal):
    bar = tqdm(total=3, desc="figures", file=sys.stderr, mininterval=0, ascii=True)
    bar.update(1)
    logging.getLogger("scaling_repro.test").warning("figure 8: wrote figure08.png")
    bar.update(2)
    bar.close()
    screen = re.split(r"[\r\n]", terminal())
    assert "figure 8: wrote figure08.png" in [m.group(2) for m in map(LINE.fullmatch, screen) if m]
    assert all("figures" not in line or not LINE.search(line) for line in screen)


def test_while_the_terminal_shows_warnings_only_info_lines_go_to_the_log_file_only(terminal, tmp_path):
    log = logging.getLogger("scaling_repro.test")
    with log_to_file(tmp_path / "study.log") as path, terminal_shows_warnings_only():
        log.info("run 3: starting")
        log.warning("run 4 failed")
    log.info("after")
    assert [m.group(2) for m in map(LINE.fullmatch, terminal().splitlines()) if m] == ["run 4 failed", "after"]
    assert [line.split(": ", 1)[1] for line in path.read_text().splitlines()] == ["run 3: starting", "run 4 failed"]
