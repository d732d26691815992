"""The in-process runner keeps DeepSpeed runs out of the sweep's own process."""

from pathlib import Path

from scaling_repro.config.recipe import RunSpec
from scaling_repro.launch import runners
from scaling_repro.launch.runners import InProcessRunner, RunTarget
from tests.helpers.factories import build_run_spec


def spec(**train) -> RunSpec:
    return build_run_spec(train=train)


def test_deepspeed_runs_go_to_a_child_process(monkeypatch):
    calls = []
    monkeypatch.setattr(runners.SubprocessRunner, "__call__", lambda self, s, claim: calls.append(self.command(s)))
    monkeypatch.setattr(RunTarget, "function", lambda self: lambda s: calls.append("in-process"))
    runner = InProcessRunner(RunTarget(Path("r.yaml")))
    runner(spec(deepspeed="zero3"), claim=None)
    runner(spec(), claim=type("Claim", (), {"lost": False})())
    assert calls[0][-2:] == ["--run-id", spec(deepspeed="zero3").run_id] and calls[1] == "in-process"
