"""Packed Slurm jobs (executor.runs_per_job = K > 1): each array task is a worker that trains several runs.

A sweep of many short runs as one job each pays a queue wait, a Python start and a torch import per run, and
many clusters want jobs of tens of minutes on whole nodes. Packed, the launch writes the runs in queue order
(trunks before their branches) to `<sweep>/packs/<batch>.json` and submits ceil(N / K) array tasks. Task k
pulls its own K runs first (positions kK .. kK+K-1), then any other run of the batch that is still open,
each through the run's claim (schedsweep.sweep.claims), so no run trains twice and a job that ends early helps
the others. Inside the job the local worker pool (schedsweep.executors.workers) trains `parallel` runs at once,
one per GPU of the allocation (gpus_per_node, pinned with CUDA_VISIBLE_DEVICES), else one.

Shared prefixes need no dependencies: a worker takes a branch once its fork exists (trunks come first), and
waits while the trunk trains elsewhere. The time limit of a job is its K runs' limits (executor.time_limit per
budget, margins included) laid on its `parallel` slots longest first: the busiest slot's sum.

Signals: `scontrol requeue` (SIGTERM to every process of the job) and the time-limit or preemption warning
(SIGUSR2) make every run in flight checkpoint at its next step boundary; on SIGUSR2 the worker requeues its own
job (at most executor.max_requeues times). The requeued job pulls the same runs again and each resumes from
its checkpoint exactly; runs no job finishes are resumed by the next launch.
"""

from __future__ import annotations

import heapq
import math
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from schedsweep import files
from schedsweep.executors.settings import SlurmSettings
from schedsweep.sweep import store
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.sweep.status import FINAL, RUNNING

PACKS = "packs"
WAIT_S = 2.0  # a worker whose remaining runs all wait for forks other jobs write looks again this often


def parallel(executor: SlurmSettings) -> int:
    """Runs a packed job trains at once: one per GPU, else one."""
    return max(1, executor.gpus_per_node)


def job_minutes(minutes: list[int], slots: int) -> int:
    """The time limit of a job whose runs take `minutes` each, on `slots` at once: longest first onto the
    least busy slot (LPT), the busiest slot's sum."""
    load = [0] * max(1, slots)
    for m in sorted(minutes, reverse=True):
        heapq.heapreplace(load, load[0] + m)
    return max(load)


def plan(records: list[dict[str, Any]], executor: SlurmSettings) -> list[tuple[list[str], int]]:
    """The packs: (run ids, time limit in minutes), K runs each in the given order."""
    k = executor.runs_per_job
    packs = []
    for first in range(0, len(records), k):
        chunk = records[first:first + k]
        minutes = [executor.time_limit(r["labels"]["budget"], int(r["labels"]["steps"])) for r in chunk]
        packs.append(([r["id"] for r in chunk], job_minutes(minutes, parallel(executor))))
    return packs


def order(sweep_dir: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Queue order with each trunk before its branches (schedsweep.sharing.forks.parents_first)."""
    from schedsweep.plan.variants import queue_order
    from schedsweep.sharing import forks

    by_path = {RunFolder.of(sweep_dir, r["id"]).path: r for r in queue_order(records)}
    return [by_path[p] for p in forks.parents_first(list(by_path))]


def write(sweep_dir: Path, batch: str, runs: list[str], executor: SlurmSettings) -> Path:
    slots = parallel(executor)
    path = sweep_dir / PACKS / f"{batch}.json"
    files.write_json(path, {"runs": runs, "per_job": executor.runs_per_job, "parallel": slots,
                            "threads": max(1, executor.cpus_per_task // slots), "max_requeues": executor.max_requeues})
    return path


def work(pack_file: str, pack: int) -> dict[str, int]:
    """An array task of a packed job: train pack `pack` of `pack_file`, then help with the batch's other open
    runs; the count of what each run ended as. What submitit submits (by reference: nothing is pickled but
    the two arguments)."""
    from schedsweep.executors import devices, snapshot, workers
    from schedsweep.sweep.claims import slurm_job
    from schedsweep.train import pinned

    snapshot.enter_launch_dir()
    data = files.read_json(Path(pack_file))
    sweep_dir = Path(pack_file).parent.parent
    ids, k = data["runs"], data["per_job"]
    mine = [RunFolder.of(sweep_dir, i).path for i in ids[pack * k:] + ids[:pack * k]]  # its own first, then the others
    queue = [p for p in mine if RunFolder(p).status().status not in FINAL]
    counts: Counter[str] = Counter()
    if not queue:
        return {}
    found = devices.visible()
    size = min(data["parallel"], len(queue))
    pins = [[found[s % len(found)]] for s in range(size)] if len(found) >= size else None
    stop: dict[str, int] = {}
    previous = {sig: signal.signal(sig, lambda signum, _frame: stop.setdefault("signal", signum))
                for sig in (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)}
    os.environ[pinned.JOB] = slurm_job() or ""  # the pool's processes get no SLURM_* variables: their attempts name the job
    pool = workers.Pool(size, data["threads"], pins=pins)
    try:
        while not stop:
            queue = [p for p in queue if RunFolder(p).status().status not in FINAL]
            while pool.idle and queue and not stop:
                path = _next(queue, idle=not pool.busy)
                if path is None:
                    break
                pool.submit(path)  # train.main claims it first: BUSY when another writer holds it
            if not pool.busy:
                if not queue:
                    break
                time.sleep(WAIT_S)  # every open run waits for a fork another job is writing
                continue
            for finished in pool.poll(wait_s=1.0):
                counts[finished.status or "died"] += 1
        if stop:
            for finished in pool.cancel():  # SIGTERM to each run: it checkpoints at its next step
                counts[finished.status or "died"] += 1
    finally:
        pool.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop.get("signal") == signal.SIGUSR2 and any(RunFolder(p).status().status not in FINAL for p in mine[:k]):
        _requeue(slurm_job(), data["max_requeues"])
    return dict(counts)


def _next(queue: list[Path], idle: bool) -> Path | None:
    """The first run that can start now: a branch once its fork exists. With nothing running here and no run
    ready, a branch whose trunk no one trains (not running) starts from step 0 rather than wait forever."""
    from schedsweep.sharing import forks

    for i, path in enumerate(queue):
        if forks.ready(path):
            return queue.pop(i)
    if not idle:
        return None
    from schedsweep.sweep import claims

    for i, path in enumerate(queue):
        parent = RunFolder(path.parent / (RunFolder(path).branch() or {}).get("of", path.name))
        if claims.observed(parent.path, parent.status()).status != RUNNING:  # its writer gone: interrupted
            return queue.pop(i)
    return None


def _requeue(job: str | None, max_requeues: int) -> None:
    """Requeue this job after the time-limit or preemption warning, while it has requeues left."""
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
    if job and restarts < max_requeues:
        subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)


def submit_arrays(sweep_dir: Path, records: list[dict[str, Any]], executor: SlurmSettings, max_size: int,
                  submit: Any) -> list[dict[str, Any]]:
    """Write the batch's packs and submit them, one array per time limit cut at `max_size`; `submit(time_min,
    throttle, calls)` submits one array (schedsweep.executors.slurm) and returns its job ids. The job records."""
    import secrets

    ordered = order(sweep_dir, records)
    batch = secrets.token_hex(4)
    pack_file = write(sweep_dir, batch, [r["id"] for r in ordered], executor)
    packs = plan(ordered, executor)
    by_time: dict[int, list[int]] = {}
    for index, (_, minutes) in enumerate(packs):
        by_time.setdefault(minutes, []).append(index)
    arrays = [(m, idx[i:i + max_size]) for m, idx in sorted(by_time.items()) for i in range(0, len(idx), max_size)]
    from schedsweep.executors.slurm import throttles

    throttle = throttles(executor, len(arrays))
    submitted, now = [], store.now()
    for (minutes, indices), share in zip(arrays, throttle):
        jobs = submit(minutes, share, [(work, str(pack_file), i) for i in indices])
        for i, job in zip(indices, jobs):
            for run in packs[i][0]:
                record = {"run": run, "job": job, "array": job.split("_")[0], "time_min": minutes, "time": now,
                          "batch": batch, "start": 0, "stop": None, "after": None, "pack": i}
                files.append_jsonl(sweep_dir / "jobs.jsonl", record)
                submitted.append(record)
    return submitted


def jobs_needed(runs: int, executor: SlurmSettings) -> int:
    return math.ceil(runs / executor.runs_per_job)
