"""Slurm: runs grouped into job arrays by time limit, cut at MaxArraySize, submitted through submitit.

Every task of an array shares its sbatch parameters, so runs are grouped by their time limit
(which may depend on the budget), each group is cut into chunks of at most MaxArraySize tasks
(the cluster's limit on the array *index*), and the sweep's throttle (`%k`) is split between the
chunks. What is submitted is `schedsweep.train.main(run_dir)` by reference: the worker reads its
run from disk, no user object is pickled. Job ids go to jobs.jsonl in the sweep folder; status
comes from the run folders first, then from one squeue and one sacct call per refresh.

Clusters without accounting (sacct absent or failing) are first-class: a job that squeue no longer
shows has left the queue, and its run, if it wrote no final status, is interrupted (it holds a
checkpoint) or failed. Every Slurm command goes through `_run`, which retries transient errors
(controller timeouts, refused connections) with exponential backoff.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from schedsweep import store
from schedsweep.errors import SchedsweepError

JOBS = "jobs.jsonl"
GONE = "LEFT_QUEUE"  # not in squeue, and sacct did not say how it ended (no accounting)
TRANSIENT = ("timed out", "unable to contact", "connection refused", "temporarily unavailable", "try again",
             "communication", "socket")
RETRIES = 4
BACKOFF_S = 0.5
ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED"}


class SubmissionError(SchedsweepError):
    """sbatch, squeue, sacct or scancel refused or failed."""


@dataclass(frozen=True)
class Array:
    """One sbatch call: runs sharing a time limit, at most MaxArraySize of them."""

    time_min: int
    run_ids: tuple[str, ...]
    throttle: int


def time_limit(executor: dict[str, Any], labels: dict[str, Any]) -> int:
    """Minutes for one run: an explicit per-budget value, else steps x time_per_step_s x safety, else time_min."""
    by_budget = executor.get("time_by_budget") or {}
    for key in (str(labels["budget"]), labels["budget"]):
        if key in by_budget:
            return int(by_budget[key])
    if executor.get("time_per_step_s"):
        seconds = labels["steps"] * float(executor["time_per_step_s"]) * float(executor.get("time_safety") or 1.0)
        return max(2, math.ceil(seconds / 60))  # >= 2 min: Slurm may signal ~30 s early (the USR2 warning)
    return int(executor["time_min"])


def max_array_size() -> int:
    text = _run(["scontrol", "show", "config"])
    for line in text.splitlines():
        if line.strip().startswith("MaxArraySize"):
            return int(line.split("=", 1)[1])
    return 1001  # Slurm's default


def arrays(records: Iterable[dict[str, Any]], executor: dict[str, Any], max_size: int) -> list[Array]:
    groups: dict[int, list[str]] = defaultdict(list)
    for record in records:
        groups[time_limit(executor, record["labels"])].append(record["id"])
    chunks = [(t, ids[i : i + max_size]) for t, ids in sorted(groups.items()) for i in range(0, len(ids), max_size)]
    shares = throttles(executor, len(chunks))
    return [Array(t, tuple(ids), share) for (t, ids), share in zip(chunks, shares)]


def throttles(executor: dict[str, Any], n_arrays: int) -> list[int]:
    """The sweep-wide throttle (array_parallelism) shared by n arrays queued together: array k
    gets its share, and at least one slot."""
    budget = int(executor.get("array_parallelism") or 256)
    return [max(1, budget // n_arrays + (k < budget % n_arrays)) for k in range(n_arrays)]


def submit(sweep_dir: Path, records: list[dict[str, Any]], executor: dict[str, Any]) -> list[dict[str, Any]]:
    """Submit every record not pending or running on the cluster already; return the new job records."""
    import submitit

    from schedsweep import train

    active = active_runs(sweep_dir)
    todo = [r for r in records if r["id"] not in active]
    if not todo:
        return []
    cpus = int(executor.get("cpus_per_task") or 1)
    gpus = int(executor.get("gpus_per_node") or 0)
    tasks = int(executor.get("tasks_per_node") or max(1, gpus))
    submitted = []
    for array in arrays(todo, executor, max_array_size()):
        ex = submitit.AutoExecutor(folder=sweep_dir / store.SUBMITIT / "%j", cluster="slurm")
        params: dict[str, Any] = {
            "name": f"schedsweep-{sweep_dir.name}",
            "timeout_min": array.time_min,
            "nodes": int(executor.get("nodes") or 1),
            "tasks_per_node": tasks,
            "cpus_per_task": cpus,
            "slurm_array_parallelism": array.throttle,
            "slurm_signal_delay_s": int(executor.get("signal_delay_s") or 60),
            "slurm_setup": list(executor.get("setup") or []),
            "slurm_additional_parameters": dict(executor.get("additional_parameters") or {}),
        }
        if gpus:
            params["gpus_per_node"] = gpus
        if executor.get("mem_gb"):
            params["mem_gb"] = float(executor["mem_gb"])
        for key in ("partition", "account", "qos", "constraint"):
            if executor.get(key):
                params[f"slurm_{key}"] = str(executor[key])
        ex.update_parameters(**params)
        try:
            with ex.batch():
                jobs = [
                    ex.submit(train.main, str(store.run_dir(sweep_dir, run_id)), cpus, int(executor.get("max_requeues") or 0))
                    for run_id in array.run_ids
                ]
        except Exception as e:  # submitit wraps sbatch's refusal in several exception types
            raise SubmissionError(f"sbatch refused the array of {len(array.run_ids)} runs ({array.time_min} min): {e}") from None
        now = store.now()
        for run_id, job in zip(array.run_ids, jobs):
            job_record = {"run": run_id, "job": job.job_id, "array": job.job_id.split("_")[0], "time_min": array.time_min, "time": now}
            store.append_jsonl(sweep_dir / JOBS, job_record)
            submitted.append(job_record)
    return submitted


def latest_jobs(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """run id -> its most recent job record."""
    path = sweep_dir / JOBS
    if not path.exists():
        return {}
    jobs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            jobs[record["run"]] = record
    return jobs


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
        text = _run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(arrays_)])
        for line in text.splitlines():
            job, _, state = line.partition("|")
            for task in expand(job):
                found[task] = state.split()[0] if state else GONE  # "CANCELLED by 0" -> CANCELLED
    except SubmissionError:
        pass  # no accounting: squeue alone tells pending/running, a vanished job has ended
    found |= _squeue(arrays_)
    return {i: found.get(i, GONE) for i in ids}


def queued(job_ids: Iterable[str]) -> set[str] | None:
    """The jobs among `job_ids` that are pending or running; None when squeue cannot answer."""
    ids = set(job_ids)
    try:
        shown = _squeue(sorted({i.split("_")[0] for i in ids}))
    except SubmissionError:
        return None
    return {job for job, state in shown.items() if job in ids and state in ACTIVE}


def _squeue(arrays_: list[str]) -> dict[str, str]:
    if not arrays_:
        return {}
    text = _run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(arrays_)], ok_codes=(0, 1))
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


def active_runs(sweep_dir: Path) -> dict[str, str]:
    """Runs whose latest job is pending or running on the cluster: run id -> job id."""
    jobs = latest_jobs(sweep_dir)
    current = states(j["job"] for j in jobs.values())
    return {run: j["job"] for run, j in jobs.items() if current.get(j["job"]) in ACTIVE}


def reconcile(sweep_dir: Path, records: list[dict[str, Any]]) -> None:
    """A run whose job left the queue without a final status (OOM, scancel, node failure) is never
    waited on: it is interrupted when it holds a checkpoint (the next launch resumes it), else failed.
    A run that another writer has claimed meanwhile is left alone."""
    from schedsweep import checkpoint, claims

    jobs = latest_jobs(sweep_dir)
    unfinished = [r["id"] for r in records if r["id"] in jobs
                  and store.read_status(store.run_dir(sweep_dir, r["id"])).status in ("pending", "running", "requeued")]
    current = states(jobs[r]["job"] for r in unfinished)
    queued_now = {job for job, state in current.items() if state in ACTIVE}
    for run_id in unfinished:
        job = jobs[run_id]["job"]
        state = current.get(job, GONE)
        if state in ACTIVE:
            continue
        path = store.run_dir(sweep_dir, run_id)
        claim = claims.read(path)
        if claim is not None and claim.job != job and not claims.gone(claim, queued_now if claim.job else None):
            continue  # trained by another writer (a local launch, `schedsweep run`)
        status = store.read_status(path)  # read again: the job may have finished its status since
        if status.status in store.TERMINAL:
            continue
        how = f"ended as {state}" if state != GONE else "left the queue (no accounting to say how)"
        if (path / checkpoint.FILE).exists():
            store.write_status(path, store.RunStatus("interrupted", steps_done=status.steps_done, requeues=status.requeues,
                                                     error=f"Slurm job {job} {how}; the next launch resumes it from its checkpoint"))
        else:
            store.write_status(path, store.RunStatus("failed", steps_done=status.steps_done, error=(
                f"Slurm job {job} {how} without a result (logs: {sweep_dir / store.SUBMITIT}); "
                "relaunch with --retry-failed to run it again")))


def cancel(sweep_dir: Path) -> list[str]:
    """Cancel every array of the sweep that still has pending or running tasks: one scancel per array."""
    arrays_ = sorted({job.split("_")[0] for job in active_runs(sweep_dir).values()}, key=int)
    for array in arrays_:
        _run(["scancel", array])
    return arrays_


def _run(cmd: list[str], ok_codes: tuple[int, ...] = (0,), retries: int = RETRIES) -> str:
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
            if proc.returncode in ok_codes and not (proc.returncode and _transient(error)):
                return proc.stdout
            transient = _transient(error)
        if not transient or attempt == retries:
            tries = f" ({attempt + 1} tries)" if attempt else ""
            raise SubmissionError(f"'{' '.join(cmd)}' failed{tries}: {error}")
        time.sleep(BACKOFF_S * 2**attempt)
    raise AssertionError("the loop returns or raises on its last attempt")


def _transient(error: str) -> bool:
    return any(phrase in error.lower() for phrase in TRANSIENT)
