"""One writer per run: a claim (lease) in the run folder, taken before the run trains.

    runs/<id>/claim.json    {host, pid, pid_start, job, start, heartbeat, token}

A process takes the claim under an flock of `runs/<id>/.claim.lock`, so two takers on one file
system never both win. Whoever finds a live claim leaves the run alone. A claim's owner is gone
when, in this order of evidence:
  - it names a Slurm job and squeue answers: the job is no longer pending or running;
  - it was taken on this host: its pid is dead (or now belongs to another process: pid_start);
  - otherwise: its heartbeat is older than STALE_S.
A gone owner's run shows as `interrupted`, and the next launch takes the claim over and resumes
the run from its checkpoint. A requeued Slurm job is the same job: it takes its own claim back.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from schedsweep import files
from schedsweep.sweep import store
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.sweep.status import HELD, INTERRUPTED, SETTLED

BUSY = "busy"  # what train.main returns, touching nothing, when another live writer holds the claim
HEARTBEAT_S = 30.0
STALE_S = 10 * HEARTBEAT_S  # a heartbeat this old means its writer is gone (another host, no Slurm job)


@dataclass(frozen=True)
class Claim:
    host: str
    pid: int
    pid_start: int | None  # the pid's start time (clock ticks since boot): a reused pid is another process
    job: str | None  # Slurm job id ("123_4" for an array task), None outside Slurm
    start: str
    heartbeat: float  # time.time() of the last heartbeat
    token: str  # this claim, as opposed to a later claim of the same process


def slurm_job() -> str | None:
    """This process's Slurm job as squeue names it: "ARRAY_TASK" for an array task, else the job id."""
    if os.environ.get("SLURM_ARRAY_TASK_ID") and os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID") or None


def pid_start(pid: int) -> int | None:
    """Start time of `pid` (field 22 of /proc/PID/stat); None when it is not running (zombies included)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces: split after it
    return None if fields[0] in ("Z", "X") else int(fields[19])


def read(run_path: Path) -> Claim | None:
    try:
        data = json.loads(RunFolder(run_path).claim_file.read_text(encoding="utf-8"))
        return Claim(**data)
    except (OSError, ValueError, TypeError):
        return None


def gone(claim: Claim, queued: set[str] | None = None) -> bool:
    """Whether the claim's owner is gone. `queued`: jobs squeue shows, when the caller already asked."""
    if claim.job:
        if queued is None:
            from schedsweep.executors import squeue

            queued = squeue.queued([claim.job])
        if queued is not None:
            return claim.job not in queued
    if claim.host == socket.gethostname():
        return pid_start(claim.pid) != claim.pid_start
    return time.time() - claim.heartbeat > STALE_S


def _mine(claim: Claim) -> bool:
    job = slurm_job()
    if job and claim.job == job:  # the same Slurm job, requeued
        return True
    return claim.host == socket.gethostname() and claim.pid == os.getpid()


def _locked(run_path: Path) -> Any:
    return files.locked(RunFolder(run_path).claim_lock)


def acquire(run_path: Path) -> tuple[Claim | None, Claim | None]:
    """Claim the run: (our claim, None), or (None, the live claim of its current owner), or
    (None, None) when an earlier writer finished it (done or diverged): nothing is left to train."""
    with _locked(run_path):
        folder = RunFolder(run_path)
        if folder.status().status in SETTLED:
            return None, None
        held = read(run_path)
        if held is not None and not _mine(held) and not gone(held):
            return None, held
        me = os.getpid()
        claim = Claim(socket.gethostname(), me, pid_start(me), slurm_job(), store.now(), time.time(), secrets.token_hex(8))
        files.write_json(folder.claim_file, asdict(claim))
        files.append_jsonl(folder.claims_file, {k: v for k, v in asdict(claim).items() if k != "heartbeat"}
                           | {"took_over": asdict(held) if held is not None else None})
        return claim, None


def release(run_path: Path, claim: Claim) -> None:
    """Remove the claim if it is still ours (a taker may have found us gone and taken it over)."""
    with _locked(run_path):
        held = read(run_path)
        if held is not None and held.token == claim.token:
            RunFolder(run_path).claim_file.unlink()


def attempts(run_path: Path) -> list[dict[str, object]]:
    """Every claim ever taken on the run, oldest first."""
    return files.read_jsonl(RunFolder(run_path).claims_file, missing_ok=True)


@contextmanager
def heartbeat(run_path: Path, claim: Claim, every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """Refresh the claim's heartbeat every `every_s` seconds from a thread while the body runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            with _locked(run_path):
                held = read(run_path)
                if held is None or held.token != claim.token:
                    return  # taken over: we are no longer its writer
                files.write_json(RunFolder(run_path).claim_file, asdict(held) | {"heartbeat": time.time()})

    thread = threading.Thread(target=beat, name="schedsweep-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def observed(run_path: Path, status: store.RunStatus, queued: set[str] | None = None) -> store.RunStatus:
    """The status as a reader should show it: `running` or `requeued` whose writer is gone is `interrupted`."""
    if status.status not in HELD:
        return status
    claim = read(run_path)
    if claim is not None and not gone(claim, queued):
        return status
    who = f"{claim.host} pid {claim.pid}" + (f", Slurm job {claim.job}" if claim.job else "") if claim else "its process"
    return replace(status, status=INTERRUPTED, error=f"{who} stopped without a final status; the next launch resumes it")


def observe_all(paths: list[Path]) -> list[store.RunStatus]:
    """observed() for many runs, with one squeue call for every Slurm job that holds a claim."""
    raw = [RunFolder(p).status() for p in paths]
    held = [read(p) if s.status in HELD else None for p, s in zip(paths, raw)]
    jobs = {c.job for c in held if c is not None and c.job}
    queued = None
    if jobs:
        from schedsweep.executors import squeue

        queued = squeue.queued(jobs)
    return [observed(p, s, queued) for p, s in zip(paths, raw)]
