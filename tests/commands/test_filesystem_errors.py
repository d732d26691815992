"""The file system's refusals (disk full, read-only, no permission) end a command with one line
naming the path and what the errno means, and exit status 2; ``-v`` adds the traceback."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from scaling_repro.cli import main
from scaling_repro.config.sweep import load_runs
from scaling_repro.errors import filesystem_error
from scaling_repro.results import RESULT_FILE
from tests.helpers.launch_fakes import write_recipe

ENOSPC = "No space left on device (ENOSPC)"


def fsync_on_a_full_disk(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write()/fsync() raise it: no file name


def test_disk_full_while_writing_a_result_is_one_line_and_exit_2(tmp_path, fake_runs, monkeypatch, capsys):
    recipe = write_recipe(tmp_path, (10,))
    monkeypatch.setattr(os, "fsync", fsync_on_a_full_disk)
    assert main(["run", str(recipe), "--index", "0"]) == 2
    err = capsys.readouterr().err
    result = load_runs(recipe).runs[0].run_dir / RESULT_FILE
    assert err.splitlines() == [f"error: {result}: {ENOSPC}; free space there or write elsewhere"]
    assert not list(result.parent.glob("*.tmp"))


def test_verbose_adds_the_traceback_before_the_line(tmp_path, fake_runs, monkeypatch, capsys):
    recipe = write_recipe(tmp_path, (10,))
    monkeypatch.setattr(os, "fsync", fsync_on_a_full_disk)
    assert main(["-v", "run", str(recipe), "--index", "0"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.splitlines()[-1].startswith("error: ")


def test_reproduce_keeps_the_traceback_in_its_log_file(tmp_path, monkeypatch, capsys):
    def stages_on_a_full_disk(plan, out_dir, *args):
        path = out_dir / "pretrained" / "tiny-s" / "model.safetensors"  # noqa: F841 - the file being written
        fsync_on_a_full_disk(3)

    monkeypatch.setattr("scaling_repro.reproduce.study._reproduce", stages_on_a_full_disk)
    out = tmp_path / "study"
    assert main(["reproduce", "tiny", "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    model = out / "pretrained" / "tiny-s" / "model.safetensors"
    assert err.splitlines() == [f"error: {model}: {ENOSPC}; free space there or write elsewhere"]
    assert "Traceback (most recent call last)" in (out / "reproduce.log").read_text()


def test_permission_denied_is_one_line(tmp_path, fake_runs, monkeypatch, capsys):
    recipe = write_recipe(tmp_path, (10,))
    run_dir = load_runs(recipe).runs[0].run_dir

    def denied(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(Path(dir) / ".result.json.x.tmp"))

    monkeypatch.setattr("scaling_repro.fileio.tempfile.mkstemp", denied)
    assert main(["run", str(recipe), "--index", "0"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {run_dir}/.result.json.x.tmp: Permission denied (EACCES); "
        "check the permissions of the folder, or write elsewhere"
    ]


def test_a_bug_is_still_a_traceback():
    assert filesystem_error(OSError(errno.ECONNREFUSED, "Connection refused")) is None
    assert filesystem_error(RuntimeError("shape mismatch")) is None
    assert filesystem_error(KeyError("x")) is None


def test_torch_and_safetensors_wrappers_name_the_file(tmp_path):
    import torch
    from safetensors.torch import save_file

    blocker = tmp_path / "weights"
    blocker.write_text("a file where a folder must be")
    target = blocker / "model.safetensors"
    with pytest.raises(Exception) as raised:
        save_file({"w": torch.zeros(2)}, str(target))
    assert filesystem_error(raised.value).startswith(f"{target}: Not a directory (ENOTDIR)")

    def torch_save_on_a_full_disk(f):
        raise RuntimeError(
            "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: "
            "file write failed"
        )

    with pytest.raises(RuntimeError) as raised:
        torch_save_on_a_full_disk(str(tmp_path / "optimizer.bin"))
    assert filesystem_error(raised.value) == (
        f"{tmp_path / 'optimizer.bin'}: could not write the file (PytorchStreamWriter failed writing file data/0: "
        "file write failed); is the file system full or read-only?"
    )


# --- a real read-only and a real full file system: a tmpfs, where this test may mount one ---


def _mount(where: Path, options: str) -> None:
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MiB tmpfs at tmp_path/mnt (skipped where it cannot be mounted); unmounted after."""
    where = tmp_path / "mnt"
    _mount(where, "size=1m")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=True)


def read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


@pytest.mark.parametrize("command", ["run", "sweep", "evaluate"])
def test_a_read_only_output_folder_is_one_line(command, tmpfs, fake_runs, monkeypatch, capsys):
    recipe = write_recipe(tmpfs, (10,))
    spec = load_runs(recipe).runs[0]
    spec.run_dir.mkdir(parents=True)
    read_only(tmpfs)

    def reevaluate(run_dir, overrides):  # evaluation done; writing the result is what fails
        from scaling_repro.results import RunDir
        from tests.helpers.launch_fakes import run_spec

        return RunDir(Path(run_dir)).write_result(run_spec(spec))

    monkeypatch.setattr("scaling_repro.pipeline.reevaluate", reevaluate)
    argv = {
        "run": ["run", str(recipe), "--index", "0"],
        "sweep": ["sweep", str(recipe)],
        "evaluate": ["evaluate", str(spec.run_dir)],
    }[command]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {tmpfs}/") and "Read-only file system (EROFS)" in line, line


def test_really_full_disk_torch_and_safetensors_errors_are_one_line(tmpfs):
    import torch
    from safetensors.torch import save_file

    with open(tmpfs / "filler", "wb") as filler, pytest.raises(OSError):
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()
    for save, name in ((torch.save, "optimizer.bin"), (save_file, "model.safetensors")):
        with pytest.raises(Exception) as raised:
            save({"w": torch.zeros(100_000)}, str(tmpfs / name))
        message = filesystem_error(raised.value)
        assert message is not None and message.startswith(str(tmpfs)), (type(raised.value), message)
