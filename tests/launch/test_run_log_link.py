"""A run's log in a shared tree is appended to only as a plain file: a planted symbolic link
fails the run in one line and the file it points at is left as it was."""

import os

import pytest

from scaling_repro.launch.runners import LOG_FILE, RunCrashed, SubprocessRunner, last_line
from tests.helpers.factories import build_run_spec


class _Claim:
    lost = False

    def add_pid(self, pid: int) -> None:
        pass


def test_a_run_log_planted_as_a_link_fails_the_run_and_leaves_its_target_alone(tmp_path):
    spec = build_run_spec(output_dir=str(tmp_path / "runs"))
    spec.run_dir.mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    (spec.run_dir / LOG_FILE).symlink_to(outside)
    runner = SubprocessRunner(command=lambda s: ["true"])
    with pytest.raises(RunCrashed, match="symbolic link"):
        runner(spec, _Claim())
    assert outside.read_text() == "precious\n"


def test_the_last_line_of_a_log_that_is_a_link_is_not_read(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    link = tmp_path / LOG_FILE
    os.symlink(outside, link)
    assert last_line(link) == ""
