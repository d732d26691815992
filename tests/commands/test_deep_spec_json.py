"""A spec.json nested too deep for the JSON parser (planted or damaged in a shared results tree)
is reported in one line naming the file, as any other unreadable spec.json is."""

from __future__ import annotations

import pytest

from scaling_repro.cli import main

DEEP = '{"a":' * 100_000


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / "sweep" / "0123456789ab"
    path.mkdir(parents=True)
    (path / "spec.json").write_text(DEEP)
    return path


def test_evaluate_reports_a_deeply_nested_spec_json_in_one_line(run_dir, capsys):
    assert main(["evaluate", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{run_dir / 'spec.json'} is unreadable" in err


def test_migrate_leaves_a_run_with_a_deeply_nested_spec_json_where_it_is(run_dir, capsys):
    assert main(["migrate", str(run_dir.parent.parent)]) == 0
    assert run_dir.is_dir() and "spec.json" in capsys.readouterr().out
