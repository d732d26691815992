"""A study whose finetuning results this user cannot read stops before fitting and says why,
instead of fitting without them."""

import pytest

from scaling_repro.errors import UserError
from scaling_repro.launch import local
from scaling_repro.launch.execute import RunOutcome
from scaling_repro.reproduce import finetune
from tests.helpers.factories import build_run_spec


def test_finetune_stage_stops_on_results_it_cannot_read(tmp_path, monkeypatch):
    spec = build_run_spec(output_dir="runs")
    unreadable = RunOutcome(spec.run_id, 0, "unreadable", "cannot read result.json: permission denied")
    monkeypatch.setattr(local, "cpu_runners", lambda *args, **kwargs: [])
    monkeypatch.setattr(local, "run_specs", lambda *args, **kwargs: [unreadable])
    with pytest.raises(UserError, match="1 finetuning result\\(s\\) cannot be read by this user"):
        finetune.finetune_runs([(spec, tmp_path / "recipe.yaml")], tmp_path, jobs=1, progress=False)
