"""One `reproduce` per output folder: a second one on the same --out stops at once, naming the
first; the lock is the kernel's, so it ends with the first process, however that ends."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from scaling_repro.cli import main
from scaling_repro.reproduce import load_plan, plan_path, reproduce
from scaling_repro.reproduce.study import LOCK_FILE, study_lock
from tests.helpers.paths import pythonpath

# A `scaling-repro reproduce tiny --quick --out OUT` whose stages wait: it marks OUT/started
# once it holds the study folder, then sleeps until killed.
FIRST = textwrap.dedent("""
    import sys, time
    import scaling_repro.reproduce.study as study

    def waiting(plan, out_dir, *args):
        (out_dir / "started").touch()
        time.sleep(120)

    study._reproduce = waiting
    from scaling_repro.cli import main
    sys.exit(main(["reproduce", "tiny", "--quick", "--out", sys.argv[1]]))
""")


@pytest.fixture
def first(tmp_path):
    """A first `reproduce` on tmp_path/study, running; yields (its Popen, the folder)."""
    out = tmp_path / "study"
    env = {**os.environ, "PYTHONPATH": pythonpath()}
    process = subprocess.Popen(
        [sys.executable, "-c", FIRST, str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # a shell's background job (`cmd &`) ignores SIGINT, and a child inherits that: a terminal's does not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (out / "started").exists():
        if process.poll() is not None:
            pytest.fail(f"the first reproduce ended: {process.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, "the first reproduce did not start"
        time.sleep(0.05)
    yield process, out
    process.kill()
    process.wait()
    process.stderr.close()


def test_a_second_reproduce_on_the_same_out_exits_2_at_once_naming_the_first(first, capsys, monkeypatch):
    process, out = first
    monkeypatch.setattr("scaling_repro.reproduce.study._reproduce", lambda *a: pytest.fail("second one ran"))
    started = time.monotonic()
    code = main(["reproduce", "tiny", "--quick", "--out", str(out)])
    assert code == 2 and time.monotonic() - started < 5
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    where = re.escape(f"{out.resolve()} (pid {process.pid} on {socket.gethostname()} since ")
    pattern = f"error: another `reproduce` is running in {where}[^)]+\\); wait for it or use another --out"
    assert re.fullmatch(pattern, line), line


def test_the_lock_ends_with_the_first_process_so_a_third_proceeds(first, monkeypatch):
    process, out = first
    process.send_signal(signal.SIGKILL)  # however it ends: no cleanup runs, no stale lock stays
    process.wait()
    assert (out / LOCK_FILE).exists()
    ran = []
    monkeypatch.setattr("scaling_repro.reproduce.study._reproduce", lambda plan, out_dir, *a: ran.append(out_dir))
    reproduce(load_plan(plan_path("tiny", True)), out)
    assert ran == [out.resolve()]


def test_ctrl_c_ends_the_first_with_130_and_frees_the_folder(first, monkeypatch):
    process, out = first
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    assert process.stderr.read().decode().splitlines()[-1] == "interrupted"
    monkeypatch.setattr("scaling_repro.reproduce.study._reproduce", lambda *a: None)
    reproduce(load_plan(plan_path("tiny", True)), out)


def test_a_child_forked_inside_the_study_does_not_keep_its_lock(tmp_path):
    ready, running = os.pipe()
    with study_lock(tmp_path):
        pid = os.fork()
        if pid == 0:  # a child that outlives the study (a leaked worker)
            os.write(running, b"1")  # its fork handlers have run
            time.sleep(30)
            os._exit(0)
        assert os.read(ready, 1) == b"1"
    try:
        with study_lock(tmp_path):  # a new open file: conflicts with any other holder
            pass
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready)
        os.close(running)


def test_the_command_and_reproduce_share_one_lock_in_a_process(tmp_path):
    with study_lock(tmp_path), study_lock(tmp_path / "."):  # re-entrant: no StudyBusy
        pass
