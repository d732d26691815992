"""A claim that cannot be released (disk full, read-only folder) is a warning: the worker goes on
with its next run and leaves no temporary claim file behind."""

from __future__ import annotations

import errno
import logging
import pathlib

import pytest

from scaling_repro.cli import main
from scaling_repro.config.sweep import load_runs
from scaling_repro.launch.claims import read_claim
from tests.helpers.launch_fakes import events, sweep_dir, write_recipe

pytestmark = pytest.mark.usefixtures("fake_runs")


def test_a_claim_release_error_lets_the_worker_run_the_next_run_and_leaves_no_tmp(
    tmp_path, monkeypatch, caplog, capsys
):
    recipe = write_recipe(tmp_path, (20, 10))  # cheapest first: 10, then 20
    sweep_dir(tmp_path).mkdir(parents=True)
    (sweep_dir(tmp_path) / "fail-10").touch()  # a failed run keeps its claims folder
    first = next(spec for spec in load_runs(recipe).runs if spec.task.train_examples == 10)
    write_text = pathlib.Path.write_text

    def disk_full_at_release(self, text, *args, **kwargs):
        if self.parent.name == "claims" and self.name.startswith(".1.json."):  # the release of generation 0
            write_text(self, text[:5], *args, **kwargs)  # half written, as by a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", disk_full_at_release)
    with caplog.at_level(logging.WARNING, logger="scaling_repro"):
        code = main(["sweep", str(recipe)])

    assert code == 1  # one failed run, and no crash
    assert sorted(row[0] for row in events(sweep_dir(tmp_path))) == sorted(s.run_id for s in load_runs(recipe).runs)
    assert "1 ok, 1 failed" in capsys.readouterr().out
    assert f"{first.run_dir}: could not release the claim" in caplog.text
    assert not list(sweep_dir(tmp_path).rglob("*.tmp"))
    assert read_claim(first.run_dir).state == "held"  # taken over once stale
