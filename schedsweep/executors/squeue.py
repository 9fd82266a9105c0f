"""Every Slurm command schedsweep runs (sbatch excepted: submitit's), through one retrying runner:
scontrol (MaxArraySize), sacctmgr (MaxSubmitJobs), squeue and sacct (job states), scancel. Transient failures (controller timeouts,
refused connections) are retried with exponential backoff; anything else is a SubmissionError at once.
The claims read it (is a claim's job still queued?) and so does the Slurm executor."""

from __future__ import annotations

import subprocess
import time
from typing import Iterable

from schedsweep.errors import SchedsweepError

GONE = "LEFT_QUEUE"  # not in squeue, and sacct did not say how it ended (no accounting)
TRANSIENT = ("timed out", "unable to contact", "connection refused", "temporarily unavailable", "try again",
             "communication", "socket")
RETRIES = 4
BACKOFF_S = 0.5
ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED"}


class SubmissionError(SchedsweepError):
    """sbatch, squeue, sacct or scancel refused or failed."""


def max_array_size() -> int:
    text = run(["scontrol", "show", "config"])
    for line in text.splitlines():
        if line.strip().startswith("MaxArraySize"):
            return int(line.split("=", 1)[1])
    return 1001  # Slurm's default


def max_submit_jobs(user: str | None = None) -> int | None:
    """The user's MaxSubmitJobs (the smallest over their associations: user, account and its parents, as
    `sacctmgr show assoc` lists them); None when no limit is set or accounting cannot say."""
    import getpass

    try:
        text = run(["sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={user or getpass.getuser()}", "format=MaxSubmit"])
    except SubmissionError:
        return None  # no accounting (slurmdbd): no association limits to read
    limits = [int(line.strip()) for line in text.splitlines() if line.strip().isdigit()]
    return min(limits) if limits else None


def submit_room(user: str | None = None) -> tuple[int | None, int]:
    """(jobs this user may still submit under MaxSubmitJobs, None without a limit; the limit, 0 without one).
    Each array task counts as a job, as Slurm counts them."""
    import getpass

    limit = max_submit_jobs(user)
    if limit is None:
        return None, 0
    queued_ = run(["squeue", "-h", "-r", "-u", user or getpass.getuser(), "-o", "%i"])
    return max(0, limit - len(queued_.split())), limit


def states(job_ids: Iterable[str]) -> dict[str, str]:
    """Slurm state of each job id ("123_4" for array tasks): one squeue call, one sacct call.

    squeue is the truth for jobs in the queue; sacct names how the others ended. A job in neither
    (no accounting, or sacct failing) has left the queue: GONE."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    arrays_ = sorted({i.split("_")[0] for i in ids})
    found: dict[str, str] = {}
    try:
        text = run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(arrays_)])
        for line in text.splitlines():
            job, _, state = line.partition("|")
            for task in expand(job):
                found[task] = state.split()[0] if state else GONE  # "CANCELLED by 0" -> CANCELLED
    except SubmissionError:
        pass  # no accounting: squeue alone tells pending/running, a vanished job has ended
    found |= squeue(arrays_)
    return {i: found.get(i, GONE) for i in ids}


def queued(job_ids: Iterable[str]) -> set[str] | None:
    """The jobs among `job_ids` that are pending or running; None when squeue cannot answer."""
    ids = set(job_ids)
    try:
        shown = squeue(sorted({i.split("_")[0] for i in ids}))
    except SubmissionError:
        return None
    return {job for job, state in shown.items() if job in ids and state in ACTIVE}


def squeue(arrays_: list[str]) -> dict[str, str]:
    if not arrays_:
        return {}
    text = run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(arrays_)], ok_codes=(0, 1))
    found = {}
    for line in text.splitlines():
        job, _, state = line.partition(" ")
        found[job] = state.strip()
    return found


def expand(job: str) -> list[str]:
    """Array tasks that sacct/squeue print compressed: '42_[0-2,5%3]' -> ['42_0', '42_1', '42_2', '42_5']."""
    base, _, rest = job.partition("_[")
    if not rest:
        return [job]
    tasks = []
    for part in rest.rstrip("]").split("%")[0].split(","):
        first, _, last = part.partition("-")
        tasks += [f"{base}_{i}" for i in range(int(first), int(last or first) + 1)]
    return tasks


def run(cmd: list[str], ok_codes: tuple[int, ...] = (0,), retries: int = RETRIES) -> str:
    """stdout of a Slurm command; transient failures (see TRANSIENT, timeouts) are retried with
    exponential backoff (BACKOFF_S, x2 each time), anything else raises SubmissionError at once."""
    for attempt in range(retries + 1):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise SubmissionError(f"'{cmd[0]}' is not installed here: executor=slurm needs the Slurm client commands.") from None
        except subprocess.TimeoutExpired:
            error, transient = "did not answer within 60 s", True
        else:
            error = proc.stderr.strip() or proc.stdout.strip()
            if proc.returncode in ok_codes and not (proc.returncode and is_transient(error)):
                return proc.stdout
            transient = is_transient(error)
        if not transient or attempt == retries:
            tries = f" ({attempt + 1} tries)" if attempt else ""
            raise SubmissionError(f"'{' '.join(cmd)}' failed{tries}: {error}")
        time.sleep(BACKOFF_S * 2**attempt)
    raise AssertionError("the loop returns or raises on its last attempt")


def is_transient(error: str) -> bool:
    return any(phrase in error.lower() for phrase in TRANSIENT)
