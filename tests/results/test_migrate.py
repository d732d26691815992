"""`scaling-repro migrate`: run directories named by an earlier run-id rule get the id their
spec has now; nothing else looks for them."""

from scaling_repro.cli import main
from scaling_repro.config.recipe import RunSpec
from scaling_repro.fileio import atomic_write_json
from scaling_repro.launch.execute import SweepOptions, execute_run
from scaling_repro.launch.status import status_of_specs
from scaling_repro.results import RunDir, new_record, read_record
from tests.helpers import launch_fakes
from tests.helpers.factories import build_run_spec

# The id of SPEC while runtime settings (here train.threads) still counted in run ids.
LEGACY_ID = "c64310ee37b5"


def tuned_spec(tmp_path) -> RunSpec:
    return build_run_spec(output_dir=str(tmp_path / "runs"), train={"threads": 2})


def legacy_run_dir(spec: RunSpec) -> RunDir:
    """A finished run directory as it was written under the legacy id."""
    legacy = RunDir(spec.run_dir.parent / LEGACY_ID)
    atomic_write_json(legacy.spec_file, {"spec": spec.model_dump(mode="json"), "run_id": LEGACY_ID, "recipe": None})
    legacy.write_result(new_record(spec, "ok").model_copy(update={"run_id": LEGACY_ID}))
    return legacy


def test_migrate_moves_a_legacy_run_directory_and_rewrites_its_id(tmp_path, capsys):
    spec = tuned_spec(tmp_path)
    assert spec.run_id == "7071fc0ac674"
    legacy = legacy_run_dir(spec)
    assert main(["migrate", str(tmp_path / "runs")]) == 0
    assert not legacy.path.exists()
    assert read_record(spec.run_dir).run_id == spec.run_id
    assert RunDir.of(spec).read_spec().run_id == spec.run_id
    assert f'"run_id": "{spec.run_id}"' in RunDir.of(spec).spec_file.read_text()
    assert f"moved {legacy.path} -> {spec.run_dir}" in capsys.readouterr().out


def test_migrate_leaves_a_directory_whose_new_name_is_taken_and_says_so(tmp_path, capsys):
    spec = tuned_spec(tmp_path)
    legacy = legacy_run_dir(spec)
    RunDir.of(spec).write_result(new_record(spec, "ok"))
    assert main(["migrate", str(tmp_path / "runs")]) == 0
    assert legacy.path.is_dir() and read_record(legacy.path).run_id == LEGACY_ID
    assert f"left {legacy.path}: {spec.run_dir} exists too" in capsys.readouterr().out


def test_migrate_leaves_run_directories_named_by_their_id_alone(tmp_path, capsys):
    spec = tuned_spec(tmp_path)
    RunDir.of(spec).write_result(new_record(spec, "ok"))
    before = RunDir.of(spec).result_file.read_bytes()
    assert main(["migrate", str(tmp_path / "runs")]) == 0
    assert RunDir.of(spec).result_file.read_bytes() == before
    assert "0 run directories renamed" in capsys.readouterr().out


def test_status_no_longer_adopts_legacy_run_directories(tmp_path):
    spec = tuned_spec(tmp_path)
    legacy = legacy_run_dir(spec)
    status = status_of_specs([spec], "recipe", stale_after=600)
    assert status.counts()["pending"] == 1 and legacy.path.is_dir() and not spec.run_dir.exists()


def test_a_sweep_worker_no_longer_adopts_legacy_run_directories(tmp_path):
    spec = tuned_spec(tmp_path)
    legacy = legacy_run_dir(spec)
    assert execute_run(spec, lambda s, claim: launch_fakes.run(s), SweepOptions()).kind == "ok"
    assert read_record(legacy.path).run_id == LEGACY_ID and read_record(spec.run_dir).run_id == spec.run_id


def test_migrate_of_a_missing_directory_is_a_one_line_error(tmp_path, capsys):
    assert main(["migrate", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope'}: no such results directory"
