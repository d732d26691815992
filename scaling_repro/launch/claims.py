"""Claims: which worker runs a run directory right now, safe across processes and hosts.

A claim is a sequence of numbered files ``run_dir/claims/<generation>.json``. The newest
generation says who holds the run (``held``: host, pids, start time) or that nobody does
(``released``). Every change - claim, release, take-over of a stale claim - creates the next
generation with an exclusive ``link()`` of a fully written temporary file, so exactly one
worker wins each change, readers never see a half-written claim, and generation numbers are
never reused (that is what makes a take-over atomic: two workers that both see generation
``g`` as stale race for ``g + 1``, and only one creates it). ``link()`` is the classic
NFS-safe way to create a file exclusively; filesystems without hard links fall back to
``O_CREAT | O_EXCL``.

A held claim is stale when every pid it names is dead on this host, or when its heartbeat
(the file's mtime, refreshed by the holder every few seconds) is older than ``stale_after``
seconds (another host, or a hung worker). Hosts that share a sweep directory therefore need
roughly synchronised clocks (NTP): keep ``stale_after`` far above any clock skew.

A generation file that does not parse as a claim (bad JSON, a wrong type, a list) is
*damaged*: it reads as held by an unknown worker and is judged by its mtime alone, so it is
taken over ``stale_after`` seconds after its last change. The holder checks at each heartbeat
that the newest generation is still its own (same token); once it is not, the claim is
``lost`` and the holder must stop the run.

A claim can name the scheduler job that holds it (``job``: a Slurm job id that stays the same
when Slurm requeues the job, ``ARRAYJOB_TASK`` for an array task). A worker of the same job
takes such a claim over at once, live or not: Slurm runs one attempt of a job at a time, so
the holder is this job's previous attempt (preempted, timed out or on a failed node), which
could not release the claim and whose heartbeat would otherwise block the run for
``stale_after`` seconds on another host.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scaling_repro.fileio import atomic_write_text

log = logging.getLogger(__name__)

CLAIMS_DIR = "claims"
DEFAULT_STALE_AFTER = 900.0  # seconds without a heartbeat before another host may take over


@dataclass(frozen=True)
class ClaimInfo:
    """One generation of a run's claim, as written on disk."""

    generation: int
    state: Literal["held", "released"]
    host: str
    pids: tuple[int, ...]
    started_at: str  # ISO time the holder claimed the run
    token: str  # unique per claim, to tell two claims of the same pid apart
    owner: str = ""  # free text: backend, Slurm job id
    job: str = ""  # scheduler job that holds the claim, the same across requeues ("" when none)
    heartbeat: float = 0.0  # file mtime when read (unix seconds); not stored in the file
    damaged: str = ""  # why the file could not be read as a claim; not stored in the file

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("heartbeat")
        data.pop("damaged")
        data["pids"] = list(self.pids)
        return json.dumps(data, sort_keys=True) + "\n"


# A pid that os.kill() accepts and that names one process (0 and negatives name process groups).
Pid = Annotated[int, Field(gt=0, lt=2**31)]


class ClaimFile(BaseModel):
    """The JSON of one generation file, strictly typed: anything else makes the claim damaged."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    state: Literal["held", "released"]
    host: str
    pids: tuple[Pid, ...]
    started_at: str
    token: str = Field(min_length=1)
    owner: str = ""
    job: str = ""


def _claims_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CLAIMS_DIR


def _generation_path(run_dir: Path, generation: int) -> Path:
    return _claims_dir(run_dir) / f"{generation}.json"


def _latest_generation(run_dir: Path) -> int | None:
    """The highest generation on disk; probes upward past a possibly stale NFS listing."""
    directory = _claims_dir(run_dir)
    try:
        numbers = [int(p.stem) for p in directory.iterdir() if p.suffix == ".json" and p.stem.isdigit()]
    except FileNotFoundError:
        return None
    latest = max(numbers, default=-1)
    while _generation_path(run_dir, latest + 1).exists():
        latest += 1
    return None if latest < 0 else latest


def claim_file(run_dir: str | Path, generation: int) -> Path:
    """Return the path of one claim generation file of ``run_dir``."""
    return _generation_path(Path(run_dir), generation)


def read_claim(run_dir: str | Path) -> ClaimInfo | None:
    """Return the newest claim generation of ``run_dir``, or None when it was never claimed.

    A generation file that is not a valid claim reads as a damaged claim (``damaged`` says
    why) held by an unknown holder, judged by its mtime alone.
    """
    run_dir = Path(run_dir)
    generation = _latest_generation(run_dir)
    if generation is None:
        return None
    return _read_generation(run_dir, generation)


def _read_generation(run_dir: Path, generation: int) -> ClaimInfo | None:
    """Return one generation as a ClaimInfo (damaged when unreadable), None when it is gone."""
    path = _generation_path(run_dir, generation)
    try:
        mtime = path.stat().st_mtime
        data = path.read_bytes()
    except FileNotFoundError:  # removed after the run finished
        return None
    except OSError as err:  # e.g. permissions: judged by its mtime like any damaged claim
        return _damaged(generation, mtime, f"unreadable: {err}")
    try:
        fields = ClaimFile.model_validate_json(data)
    except ValidationError as err:
        return _damaged(generation, mtime, _first_errors(err))
    return ClaimInfo(generation=generation, heartbeat=mtime, **fields.model_dump())


def _damaged(generation: int, mtime: float, reason: str) -> ClaimInfo:
    return ClaimInfo(generation, "held", "?", (), "?", "?", heartbeat=mtime, damaged=reason)


def _first_errors(err: ValidationError, limit: int = 2) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in err.errors()[:limit]]
    return "; ".join(parts)


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists on this host (zombies count as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(info: ClaimInfo, stale_after: float, now: float | None = None) -> bool:
    """True when a held claim's holder is gone: all its pids dead on this host, or no
    heartbeat for ``stale_after`` seconds. A released claim is never stale (it is free); a
    damaged one is stale by its mtime alone."""
    if info.state != "held":
        return False
    now = time.time() if now is None else now
    if now - info.heartbeat > stale_after:
        return True
    return info.host == socket.gethostname() and bool(info.pids) and not any(map(pid_alive, info.pids))


def held_by_job(info: ClaimInfo, job: str) -> bool:
    """Return whether ``info`` is a held claim of scheduler job ``job`` (a previous attempt of
    the same requeued job); always False for an empty ``job``."""
    return bool(job) and info.state == "held" and not info.damaged and info.job == job


def describe_holder(info: ClaimInfo) -> str:
    """Return who holds a claim (``host pid 1,2 since TIME (owner)``), or for a damaged claim
    ``damaged claim file (why)``."""
    if info.damaged:
        return f"damaged claim file ({info.damaged})"
    holder = f"{info.host} pid {','.join(map(str, info.pids)) or '?'} since {info.started_at}"
    return f"{holder} ({info.owner})" if info.owner else holder


def damaged_claim_warning(run_dir: str | Path, info: ClaimInfo, stale_after: float, now: float | None = None) -> str:
    """Return the warning for a damaged claim: its file, what is wrong, and when (or that) the
    run is taken over, ``stale_after`` seconds after the file last changed."""
    now = time.time() if now is None else now
    path = claim_file(run_dir, info.generation)
    age = now - info.heartbeat
    if age > stale_after:
        return (
            f"{path}: damaged claim file ({info.damaged}), unchanged for {age:.0f}s, more than "
            f"--stale-after {stale_after:g}s: taking the run over"
        )
    until = datetime.fromtimestamp(info.heartbeat + stale_after).isoformat(sep=" ", timespec="seconds")
    return (
        f"{path}: damaged claim file ({info.damaged}); the run counts as held by an unknown worker "
        f"until {until} (--stale-after {stale_after:g}s after the file last changed), then it is taken over"
    )


def _create_exclusive(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text`` unless it exists; return whether this call created it.
    Leaves no temporary file, also when writing it fails (a full disk)."""
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        tmp.write_text(text, encoding="utf-8")
        return _link_exclusive(tmp, path, text)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _link_exclusive(tmp: Path, path: Path, text: str) -> bool:
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as err:
        if err.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            return _create_exclusive_open(path, text)
        if tmp.stat().st_nlink == 2:  # NFS: a retransmitted link() can fail although it worked
            return True
        raise


def _create_exclusive_open(path: Path, text: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return True


@dataclass
class Claim:
    """A claim this process holds; :meth:`release` it when the run is over."""

    run_dir: Path
    info: ClaimInfo
    lost: bool = field(default=False)

    @property
    def path(self) -> Path:
        return _generation_path(self.run_dir, self.info.generation)

    def is_current(self) -> bool:
        """True while the newest generation on disk is this claim: not taken over, not
        rewritten by another worker, not removed (a damaged file of this generation still
        counts as this claim: nobody else can create it)."""
        return self._ownership() != "lost"

    def _ownership(self) -> Literal["ours", "damaged", "lost"]:
        if _latest_generation(self.run_dir) != self.info.generation:  # None: claims removed
            return "lost"
        on_disk = _read_generation(self.run_dir, self.info.generation)
        if on_disk is None:
            return "lost"
        if on_disk.damaged:
            return "damaged"
        return "ours" if on_disk.token == self.info.token else "lost"

    def heartbeat(self) -> None:
        """Refresh the claim's mtime; marks the claim ``lost`` once the newest generation is no
        longer this one (taken over, rewritten by another owner, or removed)."""
        ownership = self._ownership()
        if ownership == "lost":
            if not self.lost:
                log.error(
                    "%s: claim taken over by another worker (this one looked stale): stopping the run", self.run_dir
                )
            self.lost = True
        elif ownership == "damaged":
            log.warning("%s: own claim file was damaged; writing it again", self.path)
            atomic_write_text(self.path, self.info.to_json())
        else:
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.path)

    def add_pid(self, pid: int) -> None:
        """Record a child process that works for this claim: the claim stays live while it runs."""
        self.info = replace(self.info, pids=(*self.info.pids, pid))
        if self.is_current():
            atomic_write_text(self.path, self.info.to_json())

    def release(self, finished: bool = False) -> None:
        """Give the run back: write a ``released`` generation; with ``finished`` (the run has
        an ok result) remove the claims directory altogether. A claim that cannot be released
        (full disk, read-only folder) is a warning, not an error: it is taken over when stale."""
        try:
            if self.lost or not self.is_current():
                return
            released = replace(self.info, generation=self.info.generation + 1, state="released")
            if not _create_exclusive(_generation_path(self.run_dir, released.generation), released.to_json()):
                log.warning("%s: claim was taken over before release", self.run_dir)
                return
        except OSError as err:  # warn only: this worker goes on with its next run
            if finished:
                shutil.rmtree(_claims_dir(self.run_dir), ignore_errors=True)
            if _claims_dir(self.run_dir).exists():
                log.warning("%s: could not release the claim (%s); it is taken over once stale", self.run_dir, err)
            return
        if finished:
            # Safe: a worker that claims a finished run re-reads result.json and skips it.
            shutil.rmtree(_claims_dir(self.run_dir), ignore_errors=True)

    @contextlib.contextmanager
    def kept_alive(self, interval: float) -> Iterator[Claim]:
        """Refresh the heartbeat every ``interval`` seconds in a daemon thread while inside."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    self.heartbeat()
                except OSError as err:  # a flaky filesystem must not kill the run
                    log.warning("%s: heartbeat failed: %s", self.run_dir, err)

        thread = threading.Thread(target=beat, name=f"heartbeat-{self.run_dir.name}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()


def try_claim(
    run_dir: str | Path,
    stale_after: float = DEFAULT_STALE_AFTER,
    owner: str = "",
    attempts: int = 8,
    job: str = "",
) -> Claim | None:
    """Claim ``run_dir`` for this process; return the Claim, or None when another live worker
    holds it.

    A free (never claimed or released) run is claimed directly, a stale claim or one held by
    the same scheduler ``job`` (its previous attempt) is taken over; either way by exclusively
    creating the next generation, so of several workers racing for the same run exactly one gets it.
    """
    run_dir = Path(run_dir)
    _claims_dir(run_dir).mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        current = read_claim(run_dir)
        held = current is not None and current.state == "held"
        if held and current.damaged:
            log.warning("%s", damaged_claim_warning(run_dir, current, stale_after))
        own_job = held and held_by_job(current, job)
        if held and not own_job and not is_stale(current, stale_after):
            return None
        if own_job:
            log.warning(
                "%s: taking over the claim of this job's previous attempt: %s", run_dir, describe_holder(current)
            )
        elif held and not current.damaged:
            log.warning("%s: taking over a stale claim of %s", run_dir, describe_holder(current))
        info = ClaimInfo(
            generation=0 if current is None else current.generation + 1,
            state="held",
            host=socket.gethostname(),
            pids=(os.getpid(),),
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            token=uuid.uuid4().hex,
            owner=owner,
            job=job,
        )
        try:
            _claims_dir(run_dir).mkdir(parents=True, exist_ok=True)
            created = _create_exclusive(_generation_path(run_dir, info.generation), info.to_json())
        except FileNotFoundError:  # a finishing worker removed the claims directory meanwhile
            continue
        if created:
            return Claim(run_dir, replace(info, heartbeat=time.time()))
    return None
