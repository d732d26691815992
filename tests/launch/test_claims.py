"""Claims: one holder at a time, stale claims taken over by exactly one worker."""

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time

import pytest

from scaling_repro.launch import claims
from scaling_repro.launch.claims import CLAIMS_DIR, describe_holder, is_stale, read_claim, try_claim


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_generation(run_dir, generation, host, pids, age_seconds=0.0):
    """Put a held claim on disk as another worker would have left it."""
    path = run_dir / CLAIMS_DIR / f"{generation}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "generation": generation,
                "state": "held",
                "host": host,
                "pids": pids,
                "started_at": "2024-01-01T00:00:00+00:00",
                "token": "t",
                "owner": "",
            }
        )
    )
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def test_a_held_claim_excludes_other_workers(tmp_path):
    first = try_claim(tmp_path / "run")
    assert first is not None
    assert try_claim(tmp_path / "run") is None
    info = read_claim(tmp_path / "run")
    assert (info.state, info.host, info.pids) == ("held", socket.gethostname(), (os.getpid(),))


def test_a_released_claim_can_be_claimed_again_as_the_next_generation(tmp_path):
    try_claim(tmp_path).release()
    assert read_claim(tmp_path).state == "released"
    again = try_claim(tmp_path)
    assert again is not None and again.info.generation == 2


def test_releasing_a_finished_run_removes_its_claims(tmp_path):
    try_claim(tmp_path).release(finished=True)
    assert not (tmp_path / CLAIMS_DIR).exists()
    assert read_claim(tmp_path) is None


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    write_generation(tmp_path, 0, socket.gethostname(), [dead_pid()])
    claim = try_claim(tmp_path, stale_after=3600)
    assert claim is not None and claim.info.generation == 1


def test_a_live_claim_on_another_host_is_kept_until_its_heartbeat_is_older_than_stale_after(tmp_path):
    write_generation(tmp_path, 0, "other-host", [1], age_seconds=100)
    assert try_claim(tmp_path, stale_after=3600) is None
    assert try_claim(tmp_path, stale_after=50) is not None


def test_a_heartbeat_keeps_a_claim_fresh(tmp_path):
    claim = try_claim(tmp_path)
    stamp = time.time() - 1000
    os.utime(claim.path, (stamp, stamp))
    assert is_stale(read_claim(tmp_path), stale_after=500)
    claim.heartbeat()
    assert not is_stale(read_claim(tmp_path), stale_after=500)


def test_a_holder_learns_that_its_claim_was_taken_over(tmp_path):
    claim = try_claim(tmp_path)
    stamp = time.time() - 1000
    os.utime(claim.path, (stamp, stamp))
    taker = try_claim(tmp_path, stale_after=500)
    assert taker is not None
    claim.heartbeat()
    assert claim.lost
    claim.release()  # a lost claim's release must not free the taker's claim
    assert read_claim(tmp_path).token == taker.info.token


def _race_for(run_dir, barrier, results):
    barrier.wait()
    claim = try_claim(run_dir, stale_after=3600)
    results.put(None if claim is None else claim.info.generation)


@pytest.mark.slow
def test_workers_racing_to_take_over_one_stale_claim_produce_exactly_one_winner(tmp_path, monkeypatch):
    read = claims.read_claim

    def slow_read(run_dir):  # every worker sees the stale claim before any of them acts
        info = read(run_dir)
        time.sleep(0.2)
        return info

    monkeypatch.setattr(claims, "read_claim", slow_read)
    context = multiprocessing.get_context("fork")
    for round_ in range(3):
        run_dir = tmp_path / str(round_)
        write_generation(run_dir, 0, socket.gethostname(), [dead_pid()])
        barrier, results = context.Barrier(4), context.Queue()
        workers = [context.Process(target=_race_for, args=(run_dir, barrier, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join()
        assert sorted(outcomes, key=str) == [1, None, None, None]


def write_raw(run_dir, generation, text, age_seconds=0.0):
    """Put a claim generation file with arbitrary content on disk."""
    path = run_dir / CLAIMS_DIR / f"{generation}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def valid_fields(**changes):
    fields = {
        "state": "held",
        "host": socket.gethostname(),
        "pids": [os.getpid()],
        "started_at": "2024-01-01T00:00:00+00:00",
        "token": "t",
        "owner": "",
    }
    return json.dumps({**fields, **changes})


@pytest.mark.parametrize(
    "text",
    [
        valid_fields(pids="12x"),
        valid_fields(pids=[1.5]),
        valid_fields(pids=[10**20]),
        valid_fields(pids=[0]),
        valid_fields(host=5),
        valid_fields(state=1),
        valid_fields(token=None),
        json.dumps([1, 2]),
        "{garbled",
    ],
    ids=[
        "pids-string",
        "pid-float",
        "pid-overflow",
        "pid-zero",
        "host-number",
        "state-number",
        "token-null",
        "list",
        "garbled",
    ],
)
def test_a_claim_file_with_wrong_types_reads_as_damaged_and_never_crashes(tmp_path, text):
    write_raw(tmp_path, 0, text, age_seconds=100)
    info = read_claim(tmp_path)
    assert info.damaged and (info.state, info.pids) == ("held", ())
    assert not is_stale(info, stale_after=3600) and is_stale(info, stale_after=50)
    assert describe_holder(info).startswith("damaged claim file")


def test_a_damaged_claim_blocks_the_run_until_stale_after_with_a_warning_naming_its_file(tmp_path, caplog):
    path = write_raw(tmp_path, 0, "{garbled", age_seconds=100)
    assert try_claim(tmp_path, stale_after=3600) is None
    assert str(path) in caplog.text and "damaged claim file" in caplog.text and "taken over" in caplog.text


def test_a_damaged_claim_is_taken_over_after_stale_after_with_a_warning_naming_its_file(tmp_path, caplog):
    path = write_raw(tmp_path, 0, valid_fields(pids="12x"), age_seconds=100)
    claim = try_claim(tmp_path, stale_after=50)
    assert claim is not None and claim.info.generation == 1
    assert str(path) in caplog.text and "taking the run over" in caplog.text


def test_a_holder_whose_claim_file_was_rewritten_by_another_owner_loses_it(tmp_path):
    claim = try_claim(tmp_path)
    write_raw(tmp_path, claim.info.generation, valid_fields(host="other-host", pids=[1], token="other"))
    claim.heartbeat()
    assert claim.lost


def test_a_holder_whose_claims_were_removed_by_a_finished_taker_loses_it(tmp_path):
    claim = try_claim(tmp_path)
    stamp = time.time() - 1000
    os.utime(claim.path, (stamp, stamp))  # as if this worker had been stopped (SIGSTOP) that long
    try_claim(tmp_path, stale_after=500).release(finished=True)
    claim.heartbeat()
    assert claim.lost


def test_a_holder_rewrites_its_own_damaged_claim_file_and_keeps_it(tmp_path):
    claim = try_claim(tmp_path)
    claim.path.write_text("{garbled")
    claim.heartbeat()
    assert not claim.lost
    assert read_claim(tmp_path).token == claim.info.token


def test_a_requeued_slurm_task_takes_over_the_live_claim_of_its_previous_attempt_at_once(tmp_path):
    previous = try_claim(tmp_path / "run", owner="slurm job 7_3", job="7_3")
    assert try_claim(tmp_path / "run", job="7_4") is None  # another task of the array: busy
    again = try_claim(tmp_path / "run", job="7_3")
    assert again is not None and again.info.generation == previous.info.generation + 1
    assert read_claim(tmp_path / "run").job == "7_3"
