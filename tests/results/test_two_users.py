"""Two users of one group share a results tree, as a team on a cluster does: a setgid group
folder, umask 002. The teammate sees the owner's finished runs as done, may rerun a failed one,
and changes none of the others; a run whose files the owner kept from the group (umask 077, or
a result.json written owner-only before file modes were fixed) is "cannot read" for the
teammate: not pending, not failed, not rerun by ``--rerun-failed``, not moved, and left out of
the fits with a warning. Everything the teammate creates follows its umask and the group.

The users are real: forked children that drop root for uid 4241 (owner) and 4243 (teammate)
in group 4242, which need no /etc/passwd entry, and call the Python API and the CLI's ``main``.
Needs root; skipped otherwise.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickle
import shutil
import stat
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import scaling_repro.train.checkpoint  # noqa: F401 (imported by reevaluate, which the teammate calls)
from scaling_repro.cli import main
from scaling_repro.config.recipe import TaskConfig
from scaling_repro.config.sweep import load_runs
from scaling_repro.data.collate import encode_examples
from scaling_repro.data.synthetic import pretraining_corpus
from scaling_repro.data.tasks import load_task
from scaling_repro.data.token_cache import cached_encoding
from scaling_repro.errors import UserError
from scaling_repro.launch.execute import SweepOptions, execute_run
from scaling_repro.launch.plan import describe_skipped, plan_sweep
from scaling_repro.launch.status import format_status, status_of_directory, status_of_specs
from scaling_repro.models.tokenizer import load_tokenizer, train_tokenizer
from scaling_repro.pipeline import reevaluate
from scaling_repro.results import RESULT_FILE, RunDir, UnreadableResult, load_results, new_record

OWNER, TEAMMATE, GROUP = 4241, 4243, 4242

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or os.geteuid() != 0, reason="acting as two users needs root (setuid)"
)


def as_user(uid: int, umask: int, work: Callable[[], Any]) -> Any:
    """Return what ``work()`` returns when run in a forked child as ``uid`` in group GROUP only,
    with ``umask``; its warnings and scaling_repro log records are returned with it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        payload = b""
        try:
            os.close(read_end)
            os.setgroups([GROUP])
            os.setgid(GROUP)
            os.setuid(uid)
            os.umask(umask)
            records: list[str] = []
            handler = logging.Handler(logging.WARNING)
            handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
            logging.getLogger("scaling_repro").addHandler(handler)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                value = work()
            payload = pickle.dumps(("ok", (value, [str(w.message) for w in caught], records)))
        except BaseException:
            payload = pickle.dumps(("error", traceback.format_exc()))
        finally:
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)
    if kind == "error":
        pytest.fail(f"as uid {uid}:\n{value}")
    return value


def cli_as_teammate(*args: str) -> tuple[int, str]:
    """Return the exit status and output of ``scaling-repro ARGS`` run as the teammate (umask
    002, group GROUP). In a forked child, not ``python -m scaling_repro``: the interpreter may
    live where only root can read it (root's pyenv), so the child imports nothing new: the
    command ran once as root beforehand (:func:`warm_up`)."""

    def command() -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(list(args))
        return code, out.getvalue()

    value, _, _ = as_user(TEAMMATE, 0o002, command)
    return value


def warm_up(tmp_path: Path, recipe: Path) -> None:
    """Import what the CLI commands of the test import lazily: run them as root on a scratch
    copy of the recipe (whose runs go to ``tmp_path``)."""
    text = recipe.read_text().replace(str(recipe.parent / "runs"), str(tmp_path / "runs"))
    scratch = tmp_path / "recipe.yaml"
    scratch.write_text(text)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["status", str(scratch)]) == 0
        assert main(["sweep", str(scratch), "--rerun-failed", "--dry-run"]) == 0
        main(["report", "--results", str(tmp_path / "runs"), "--out", str(tmp_path / "warm-report")])
        main(["fit", str(tmp_path / "runs")])


def ok_runner(spec, claim) -> None:
    """What a run writes: spec.json first, result.json last."""
    RunDir.of(spec).write_spec(spec)
    RunDir.of(spec).write_result(new_record(spec, "ok", wall_seconds=60.0))


def failing_runner(spec, claim) -> None:
    raise RuntimeError("out of memory")


def snapshot(folder: Path) -> dict[str, tuple[int, int, int, int, bytes]]:
    """Every file and folder under ``folder``: (uid, gid, mode, mtime, bytes of a file)."""
    seen = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if path.is_file() else b""
        seen[str(path.relative_to(folder))] = (st.st_uid, st.st_gid, st.st_mode, st.st_mtime_ns, data)
    return seen


@pytest.fixture
def shared():
    """A setgid group folder in /tmp (pytest's tmp_path is root's own, 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="scaling-repro-shared-"))
    try:
        os.chown(folder, OWNER, GROUP)
        folder.chmod(0o2775)
        recipe = folder / "recipe.yaml"
        recipe.write_text(
            f"name: team\noutput_dir: {json.dumps(str(folder / 'runs'))}\n"
            "task: {name: synthetic_mt}\nmodel: {name: tiny-s}\nmethod: {kind: lora}\n"
            "sweep:\n  grid:\n    task.train_examples: [10, 20, 30, 40, 50]\n"
        )
        recipe.chmod(0o644)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_teammate_sees_done_runs_done_leaves_unreadable_ones_alone_and_writes_for_the_group(shared, tmp_path):
    recipe = shared / "recipe.yaml"
    warm_up(tmp_path, recipe)
    runs = shared / "runs"
    specs = load_runs(recipe).runs
    done, also_done, failed, private, old_mode = specs

    def owner_sweeps() -> None:
        for spec, runner in ((done, ok_runner), (also_done, ok_runner), (failed, failing_runner)):
            execute_run(spec, runner, SweepOptions())
        execute_run(old_mode, ok_runner, SweepOptions())
        (old_mode.run_dir / RESULT_FILE).chmod(0o600)  # as written before file modes were fixed
        os.umask(0o077)  # a member whose shell keeps everything private
        execute_run(private, ok_runner, SweepOptions())

    as_user(OWNER, 0o002, owner_sweeps)
    assert (runs / "team").stat().st_gid == GROUP and (runs / "team").stat().st_mode & stat.S_ISGID
    before = snapshot(runs)

    def teammate_looks() -> dict[str, Any]:
        return {
            "recipe": status_of_specs(specs, "recipe", 600).counts(),
            "directory": status_of_directory(runs, 600).counts(),
            "report": format_status(status_of_specs(specs, "recipe", 600)),
            "plan": describe_skipped(plan_sweep(specs, SweepOptions(retry_failed_before=time.time()))[1]),
        }

    looked, _, _ = as_user(TEAMMATE, 0o002, teammate_looks)
    expected = {"done": 2, "running": 0, "failed": 1, "pending": 0, "unreadable": 2}
    assert looked["recipe"] == expected and looked["directory"] == expected
    report = looked["report"]
    assert "cannot read 2" in report and "cannot read (permission)" in report and "umask 002" in report
    failures = report.split("failures")[1].split("cannot read")[0]
    assert failed.run_id in failures and private.run_id not in failures and old_mode.run_id not in failures
    assert (
        "2 done, 1 failed earlier" not in looked["plan"]
        and "2 with a result.json this user cannot read" in (looked["plan"])
    )
    assert snapshot(runs) == before  # looking changes nothing

    def teammate_reruns_failed() -> dict[str, Any]:
        ran: list[str] = []

        def recording_runner(spec, claim):
            ran.append(spec.run_id)
            ok_runner(spec, claim)

        options = SweepOptions(retry_failed_before=time.time())
        outcomes = {spec.run_id: execute_run(spec, recording_runner, options).kind for spec in specs}
        try:
            reevaluate(old_mode.run_dir)
            evaluated = "evaluated"
        except UnreadableResult as err:
            evaluated = str(err)
        try:
            RunDir.of(private).finished_record()
            finished = "read"
        except UnreadableResult as err:
            finished = str(err)
        try:
            reevaluate(private.run_dir)
            private_evaluated = "evaluated"
        except UserError as err:  # its spec.json is as private as its result
            private_evaluated = str(err)
        return {
            "ran": ran,
            "outcomes": outcomes,
            "evaluated": evaluated,
            "finished": finished,
            "private_evaluated": private_evaluated,
            "fitted": sorted(r.run_id for r in load_results(runs)),
        }

    result, warned, logged = as_user(TEAMMATE, 0o002, teammate_reruns_failed)
    assert result["ran"] == [failed.run_id]  # the one failed run, nothing else
    assert result["outcomes"] == {
        done.run_id: "skipped",
        also_done.run_id: "skipped",
        failed.run_id: "ok",
        private.run_id: "unreadable",
        old_mode.run_id: "unreadable",
    }
    assert "cannot read it" in result["evaluated"] and "cannot read it" in result["finished"]
    assert "cannot read it" in result["private_evaluated"] and "umask 002" in result["private_evaluated"]
    assert result["fitted"] == sorted([done.run_id, also_done.run_id, failed.run_id])
    unreadable_warnings = [w for w in warned if w.startswith("skipping unreadable")]
    assert len(unreadable_warnings) == 2 and all("umask 002" in w for w in unreadable_warnings)
    assert sum("cannot read" in line for line in logged) >= 2

    after = snapshot(runs)
    rerun = str(failed.run_dir.relative_to(runs))
    for path, entry in before.items():  # the owner's files, outside the rerun failed run, are untouched
        if not path.startswith(rerun + "/") and path != rerun:
            assert after.get(path) == entry, path
    assert not [p for p in after if p not in before and not p.startswith(rerun + "/")]
    created = {p: after[p] for p in after if after[p][0] == TEAMMATE}
    assert f"{rerun}/{RESULT_FILE}" in created and f"{rerun}/result.failed.json" in after
    for path, (_, gid, mode, _, _) in created.items():  # the teammate's files: group-writable, the group's
        assert gid == GROUP, path
        assert stat.S_IMODE(mode) & 0o777 == (0o775 if stat.S_ISDIR(mode) else 0o664), (path, oct(mode))

    code, out = cli_as_teammate("status", str(recipe))
    assert code == 0, out
    assert "done 3  running 0  failed 0  pending 0  cannot read 2" in out
    assert "cannot read (permission)" in out and "--rerun-failed`" not in out
    code, out = cli_as_teammate("sweep", str(recipe), "--rerun-failed", "--dry-run")
    assert code == 0, out
    assert "0 run(s) to start" in out and "2 with a result.json this user cannot read" in out
    code, out = cli_as_teammate("report", "--results", str(runs), "--out", str(tmp_path / "teammate-report"))
    assert "skipping unreadable" in out and "umask 002" in out, out
    code, out = cli_as_teammate("fit", str(runs))
    assert "skipping unreadable" in out, out
    assert snapshot(runs) == after


def test_a_teammate_reads_the_owner_s_token_cache_and_encodes_what_it_lacks_in_memory(shared, tmp_path):
    train_tokenizer(pretraining_corpus(2000, parallel_share=0.3), 300, tmp_path / "tok")
    tokenizer = load_tokenizer(str(tmp_path / "tok"))
    params = {"train_pool": 2000, "dev_size": 40, "test_size": 20, "zero_shot_size": 20}
    task = load_task(TaskConfig(name="synthetic_mt", train_examples=100, seed=3, params=params))
    cache = shared / "cache"

    def owner_builds_train() -> None:
        cached_encoding(cache, tokenizer, task.train, task.info, split="train")

    as_user(OWNER, 0o022, owner_builds_train)  # a default umask: the group may read, not write
    assert not cache.stat().st_mode & 0o020
    before = snapshot(cache)

    def teammate_trains() -> tuple[bool, list, list]:
        train = cached_encoding(cache, tokenizer, task.train, task.info, split="train")
        dev = cached_encoding(cache, tokenizer, task.dev, task.info, split="dev")
        return type(train.tokens).__name__ == "memmap", list(train), list(dev)

    (mapped, train, dev), _, logged = as_user(TEAMMATE, 0o002, teammate_trains)
    assert mapped and train == encode_examples(tokenizer, task.train, task.info, log_counts=False)
    assert dev == encode_examples(tokenizer, task.dev, task.info, log_counts=False)
    (warning,) = logged
    assert "not writable" in warning and "in memory" in warning
    assert snapshot(cache) == before
