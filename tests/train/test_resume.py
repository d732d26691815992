"""Crash safety: an interrupted run, rerun on its directory, ends as an uninterrupted one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from scaling_repro.train.checkpoint import checkpoint_dir
from tests.helpers.crash_resume import Crash, curves, run
from tests.helpers.paths import pythonpath


@pytest.mark.parametrize("crash_at", [4, 5])  # 4: after a dev eval saved a best, before a checkpoint
def test_rerun_after_a_crash_gives_the_uninterrupted_result(tmp_path, uninterrupted, crash_at):
    with pytest.raises(Crash):
        run(tmp_path, crash_at=crash_at)
    result = run(tmp_path)
    expected_result, expected_curves = uninterrupted
    assert result.resumed_from_step == 3
    train_curve, dev_curve = curves(tmp_path)
    assert train_curve == pytest.approx(expected_curves[0], abs=1e-6)
    assert dev_curve == pytest.approx(expected_curves[1], abs=1e-6)
    assert (result.best_step, result.steps, result.tokens_seen) == (
        expected_result.best_step,
        expected_result.steps,
        expected_result.tokens_seen,
    )
    assert result.best_dev_loss == pytest.approx(expected_result.best_dev_loss, abs=1e-6)
    assert len(list(checkpoint_dir(tmp_path).glob("best-*"))) == 1


def test_full_model_resume_restores_tied_weights_and_optimizer(tmp_path):
    run(tmp_path / "whole", kind="full")
    with pytest.raises(Crash):
        run(tmp_path / "crashed", crash_at=5, kind="full")
    assert run(tmp_path / "crashed", kind="full").resumed_from_step == 3
    assert curves(tmp_path / "crashed")[0] == pytest.approx(curves(tmp_path / "whole")[0], abs=1e-6)


KILLER = textwrap.dedent(
    """
    import os, signal
    import scaling_repro.train.checkpoint as checkpoint
    import tests.helpers.crash_resume as t

    original = checkpoint.atomic_write_json
    def kill_mid_checkpoint(path, data):
        # The step-6 checkpoint's Accelerate state is on disk, its trainer state is not.
        if ".tmp-step-00000006" in str(path):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(path, data)
    checkpoint.atomic_write_json = kill_mid_checkpoint
    t.run(__import__("pathlib").Path({run_dir!r}))
    """
)


@pytest.mark.slow
def test_rerun_after_sigkill_while_writing_a_checkpoint(tmp_path, uninterrupted):
    env = {**os.environ, "PYTHONPATH": pythonpath()}
    script = KILLER.format(run_dir=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert list(checkpoint_dir(tmp_path).glob(".tmp-step-00000006"))  # killed mid-write
    result = run(tmp_path)
    assert result.resumed_from_step == 3
    assert curves(tmp_path)[0] == pytest.approx(uninterrupted[1][0], abs=1e-6)
    assert curves(tmp_path)[1] == pytest.approx(uninterrupted[1][1], abs=1e-6)
    assert not list(checkpoint_dir(tmp_path).glob(".tmp-*"))
