"""A run whose folder this user may not write into (a teammate's, under a private umask) is
left as it is: the worker cannot claim it, says so, and goes on; nothing is recorded."""

import logging

from scaling_repro.launch import execute
from scaling_repro.launch.execute import SweepOptions, execute_run
from tests.helpers.factories import build_run_spec


def test_a_run_this_user_cannot_claim_is_left_alone_with_a_warning(tmp_path, monkeypatch, caplog):
    spec = build_run_spec(output_dir=str(tmp_path / "runs"))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(spec.run_dir / "claims"))

    def must_not_run(spec, claim):
        raise AssertionError("ran a run it could not claim")

    monkeypatch.setattr(execute, "try_claim", refuse)
    with caplog.at_level(logging.WARNING):
        outcome = execute_run(spec, must_not_run, SweepOptions())
    assert outcome.kind == "unreadable" and "cannot claim it" in outcome.detail
    assert "cannot claim it" in caplog.text and "Shared folders" in caplog.text
    assert not (spec.run_dir / "result.json").exists()
