"""Slurm: runs grouped into job arrays by time limit, cut at MaxArraySize, submitted through submitit.

Every task of an array shares its sbatch parameters, so runs are grouped by their time limit
(which may depend on the budget), each group is cut into chunks of at most MaxArraySize tasks
(the cluster's limit on the array *index*), and the sweep's throttle (`%k`) is split between the
chunks. Runs that share prefixes are cut into segments at their fork steps, one job each, and arrays
wait for the arrays that write their forks (schedsweep.sharing.segments). What is submitted is
`schedsweep.train.run.segment(run_dir)` by reference: the worker reads its run from disk, no user object
is pickled. Job ids go to jobs.jsonl in the sweep folder; status
comes from the run folders first, then from one squeue and one sacct call per refresh.

Clusters without accounting (sacct absent or failing) are first-class: a job that squeue no longer
shows has left the queue, and its run, if it wrote no final status, is interrupted (it holds a
checkpoint) or failed. Every Slurm command goes through schedsweep.executors.squeue, which retries transient errors.
"""

from __future__ import annotations

import math
import secrets
from pathlib import Path
from typing import Any

from schedsweep import files
from schedsweep.sharing import forks, segments
from schedsweep.executors import snapshot, squeue
from schedsweep.executors.settings import SlurmSettings
from schedsweep.sweep import store
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.sweep.status import DONE, FAILED, FINAL, INTERRUPTED, OPEN

JOBS = "jobs.jsonl"


def throttles(executor: SlurmSettings, n_arrays: int) -> list[int]:
    """The sweep-wide throttle (array_parallelism) shared by n arrays queued together: array k
    gets its share, and at least one slot."""
    budget = executor.array_parallelism
    return [max(1, budget // n_arrays + (k < budget % n_arrays)) for k in range(n_arrays)]


def plan_arrays(sweep_dir: Path, records: list[dict[str, Any]], executor: SlurmSettings,
                max_size: int) -> tuple[list[segments.Segment], list[segments.Array]]:
    """The runs' segments (cut at the forks their branches still need) and the arrays that submit them."""
    from schedsweep.train import checkpoint

    runs = [RunFolder.of(sweep_dir, r["id"]).record() for r in records]
    referenced = {(r["id"], k) for r in runs for k in r.get("forks", ())}
    referenced |= {(r["branch"]["of"], int(r["branch"]["step"])) for r in runs if r.get("branch")}
    written = {(run, k) for run, k in referenced
               if (RunFolder.of(sweep_dir, run).fork(k) / forks.CHECKPOINT).is_file()}
    queued_now = active_runs(sweep_dir)
    running = {(j["run"], j["stop"]): j["job"] for run, js in current_jobs(sweep_dir).items() if run in queued_now
               for j in js if j.get("stop") is not None}
    resume = {r["id"]: k for r in runs if (k := checkpoint.step(RunFolder.of(sweep_dir, r["id"]).path)) is not None}
    cut = segments.cut(runs, written, running, resume)
    labels = {r["id"]: r["labels"] for r in runs}

    def minutes(seg: segments.Segment) -> int:
        stop = seg.stop if seg.stop is not None else int(labels[seg.run]["steps"])
        return executor.time_limit(labels[seg.run]["budget"], stop - seg.start)

    grouped = segments.arrays(cut, minutes, max_size)
    return cut, segments.throttled(grouped, throttles(executor, len(grouped)))


def submit(sweep_dir: Path, records: list[dict[str, Any]], executor: SlurmSettings) -> list[dict[str, Any]]:
    """Submit every record not pending or running on the cluster already; return the new job records
    (one per segment: a run that writes forks for branches is several jobs, see schedsweep.sharing.segments)."""
    from schedsweep.train import run as train

    active = active_runs(sweep_dir)
    todo = [r for r in records if r["id"] not in active]
    if not todo:
        return []
    sweep_dir = sweep_dir.resolve()  # the jobs start in the code snapshot: every path they get is absolute
    code = snapshot.take(sweep_dir)  # what the jobs import, whatever the working tree holds when they start
    if executor.runs_per_job > 1:  # several runs per job, pulled through their claims (schedsweep.executors.packed)
        from schedsweep.executors import packed

        return packed.submit_arrays(sweep_dir, todo, executor, squeue.max_array_size(), lambda minutes, throttle, calls: (
            _submit_array(sweep_dir, executor, code, minutes, throttle, dict(executor.additional_parameters), calls)))
    cut, grouped = plan_arrays(sweep_dir, todo, executor, squeue.max_array_size())
    batch = secrets.token_hex(4)  # one launch's jobs: a run's current segments (current_jobs)
    submitted = []
    job_of: dict[int, str] = {}  # segment index -> its job id
    array_job: list[str] = []  # array index -> its job id (the array's, or the one job's)
    for array in grouped:
        extra = dict(executor.additional_parameters)
        after = segments.dependency(array, array_job[array.after] if array.after is not None else None)
        if after:
            extra |= {"dependency": after, "kill_on_invalid_dep": "yes"}  # a failed segment cancels what waits on it
        jobs = _submit_array(sweep_dir, executor, code, array.time_min, array.throttle, extra,
                             [(train.segment, str(RunFolder.of(sweep_dir, cut[i].run).path), executor.cpus_per_task,
                               executor.max_requeues, cut[i].stop) for i in array.segments])
        array_job.append(jobs[0].split("_")[0])
        now = store.now()
        for i, job_id in zip(array.segments, jobs):
            seg = cut[i]
            job_of[i] = job_id
            waits = job_of.get(seg.after) if isinstance(seg.after, int) else seg.after
            job_record = {"run": seg.run, "job": job_id, "array": job_id.split("_")[0], "time_min": array.time_min,
                          "time": now, "batch": batch, "start": seg.start, "stop": seg.stop, "after": waits}
            files.append_jsonl(sweep_dir / JOBS, job_record)
            submitted.append(job_record)
    return submitted


def submit_within_limit(sweep_dir: Path, records: list[dict[str, Any]], executor: SlurmSettings
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """submit() what fits under the user's MaxSubmitJobs (each array task counts, as Slurm counts them):
    (the job records, the records held back, the limit or 0 without one). A relaunch, or --wait as jobs
    end, submits the held-back runs."""
    room, limit = squeue.submit_room()
    if room is None:
        return submit(sweep_dir, records, executor), [], 0
    active = active_runs(sweep_dir)
    todo = [r for r in records if r["id"] not in active]
    fits = _fit(sweep_dir, todo, executor, room)
    kept = {r["id"] for r in fits}
    return (submit(sweep_dir, fits, executor) if fits else []), [r for r in todo if r["id"] not in kept], limit


def _fit(sweep_dir: Path, todo: list[dict[str, Any]], executor: SlurmSettings, room: int) -> list[dict[str, Any]]:
    """The first runs of `todo` whose jobs number at most `room`: runs_per_job runs a job when packed, else
    a job per segment (a run cut at its fork steps is several)."""
    if executor.runs_per_job > 1:
        from schedsweep.executors import packed

        return packed.order(sweep_dir, todo)[:room * executor.runs_per_job]
    fits = todo[:room]
    while fits:
        cut, _ = plan_arrays(sweep_dir, fits, executor, squeue.max_array_size())
        if len(cut) <= room:
            break
        fits = fits[:max(0, len(fits) - (len(cut) - room))]
    return fits


def _submit_array(sweep_dir: Path, executor: SlurmSettings, code: Path, time_min: int, throttle: int,
                  extra: dict[str, Any], calls: list[tuple[Any, ...]]) -> list[str]:
    """Submit one array (one task per call: a function and its arguments) in the code snapshot `code`; its job ids."""
    import submitit

    ex = submitit.AutoExecutor(folder=sweep_dir / store.SUBMITIT / "%j", cluster="slurm")
    options = job_options(executor)
    ex.update_parameters(
        name=f"schedsweep-{sweep_dir.name}",
        timeout_min=time_min,
        nodes=options.pop("nodes"),
        tasks_per_node=options.pop("ntasks-per-node"),
        cpus_per_task=options.pop("cpus-per-task"),
        slurm_array_parallelism=throttle,
        slurm_signal_delay_s=executor.signal_delay_s,
        slurm_setup=[*snapshot.setup_lines(code), *executor.setup],
        slurm_additional_parameters={"chdir": str(code)} | extra | {k.replace("-", "_"): v for k, v in options.items()},
    )
    try:
        with ex.batch():
            jobs = [ex.submit(*call) for call in calls]
    except Exception as e:  # submitit wraps sbatch's refusal in several exception types
        raise squeue.SubmissionError(f"sbatch refused the array of {len(calls)} jobs ({time_min} min): {e}") from None
    return [job.job_id for job in jobs]


def job_options(executor: SlurmSettings) -> dict[str, Any]:
    """The sbatch options of one run's job, by sbatch's long names (the one mapping of the settings to
    Slurm: submit passes them to submitit, export-sbatch writes them as #SBATCH lines); unset ones left out.
    The time limit, array, signal and log are per array and set by each."""
    options: dict[str, Any] = {"nodes": executor.nodes, "ntasks-per-node": executor.tasks, "cpus-per-task": executor.cpus_per_task}
    options |= {k: v for k in ("partition", "account", "qos", "constraint") if (v := getattr(executor, k)) is not None}
    if executor.gpus_per_node:
        options["gpus-per-node"] = executor.gpus_per_node
    if executor.mem_gb is not None:
        options["mem"] = f"{math.ceil(executor.mem_gb * 1024)}M"
    return options | {k.replace("_", "-"): v for k, v in executor.additional_parameters.items()}


def _job_records(sweep_dir: Path) -> list[dict[str, Any]]:
    return files.read_jsonl(sweep_dir / JOBS, missing_ok=True)


def latest_jobs(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """run id -> its most recent job record (its last segment's)."""
    return {record["run"]: record for record in _job_records(sweep_dir)}


def current_jobs(sweep_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """run id -> the job records of its latest submission, in step order (one per segment)."""
    jobs: dict[str, list[dict[str, Any]]] = {}
    for record in _job_records(sweep_dir):
        mine = jobs.setdefault(record["run"], [])
        if mine and mine[-1].get("batch") != record.get("batch"):
            mine.clear()
        mine.append(record)
    return jobs


def active_runs(sweep_dir: Path) -> dict[str, str]:
    """Runs with a current job pending or running on the cluster: run id -> that job (a running one first)."""
    jobs = current_jobs(sweep_dir)
    now = squeue.states(j["job"] for js in jobs.values() for j in js)
    active = {}
    for run, js in jobs.items():
        queued_ = sorted((now.get(j["job"]) != "RUNNING", k) for k, j in enumerate(js) if now.get(j["job"]) in squeue.ACTIVE)
        if queued_:
            active[run] = js[queued_[0][1]]["job"]
    return active


def reconcile(sweep_dir: Path, records: list[dict[str, Any]]) -> None:
    """A run whose jobs left the queue without a final status (OOM, scancel, node failure) is never
    waited on: it is interrupted when it holds a checkpoint (the next launch resumes it), else failed.
    A run whose job never started because a segment it waits on failed (Slurm cancels it) is failed,
    naming that segment. A run that another writer has claimed meanwhile is left alone."""
    from schedsweep.sweep import claims

    everything = _job_records(sweep_dir)
    by_job = {j["job"]: j for j in everything}
    jobs = current_jobs(sweep_dir)
    unfinished = [r["id"] for r in records if r["id"] in jobs
                  and RunFolder.of(sweep_dir, r["id"]).status().status in OPEN]
    asked: set[str] = set()
    for chain in [list(jobs[r]) for r in unfinished]:  # each job and every job it waits on, up the chain
        while chain:
            job = chain.pop()
            if job["job"] not in asked:
                asked.add(job["job"])
                chain += [by_job.get(job["after"], {"job": job["after"]})] if job.get("after") else []
    current = squeue.states(asked)
    queued_now = {job for job, state in current.items() if state in squeue.ACTIVE}
    for run_id in unfinished:
        if any(current.get(j["job"]) in squeue.ACTIVE for j in jobs[run_id]):
            continue
        first = next((j for j in jobs[run_id] if not _succeeded(sweep_dir, j, current.get(j["job"], squeue.GONE))), jobs[run_id][-1])
        job, state = first["job"], current.get(first["job"], squeue.GONE)
        folder = RunFolder.of(sweep_dir, run_id)
        claim = claims.read(folder.path)
        if claim is not None and claim.job != job and not claims.gone(claim, queued_now if claim.job else None):
            continue  # trained by another writer (a local launch, `schedsweep run`)
        status = folder.status()  # read again: the job may have finished its status since
        if status.status in FINAL:
            continue
        failed = _failed_segment(sweep_dir, first, by_job, current)
        if failed is not None:
            folder.write_status(store.RunStatus(FAILED, steps_done=status.steps_done, error=(
                f"{segments.describe(failed)} {_how(current.get(failed['job'], squeue.GONE))}, so this run could not go on; "
                "relaunch with --retry-failed to resume that segment from its checkpoint, then this run")))
            continue
        how = _how(state)
        if folder.checkpoint.exists():
            folder.write_status(store.RunStatus(INTERRUPTED, steps_done=status.steps_done, requeues=status.requeues,
                                                error=f"Slurm job {job} {how}; the next launch resumes it from its checkpoint"))
        else:
            folder.write_status(store.RunStatus(FAILED, steps_done=status.steps_done, error=(
                f"Slurm job {job} {how} without a result (logs: {sweep_dir / store.SUBMITIT}); "
                "relaunch with --retry-failed to run it again")))


def _how(state: str) -> str:
    return f"ended as {state}" if state != squeue.GONE else "left the queue (no accounting to say how)"


def _failed_segment(sweep_dir: Path, job: dict[str, Any], by_job: dict[str, dict[str, Any]],
                    current: dict[str, str]) -> dict[str, Any] | None:
    """The segment whose failure kept `job` from starting (the farthest up the chain of jobs each
    waited on that did not succeed); None when what it waited on succeeded (its own failure)."""
    failed = None
    while job.get("after"):
        parent = by_job.get(job["after"], {"run": "?", "job": job["after"]})
        state = current.get(job["after"], "COMPLETED")
        if state in squeue.ACTIVE or _succeeded(sweep_dir, parent, state):
            break
        failed = job = parent
    return failed


def _succeeded(sweep_dir: Path, job: dict[str, Any], state: str) -> bool:
    """The job ended COMPLETED; or, without accounting (it left the queue and nothing says how), its
    run got past the segment's last step: the run is done, or its fork at that step or its checkpoint
    (a later segment's, at the failure) shows it. A failed run's status does not say how far it got."""
    if state == "COMPLETED":
        return True
    if state != squeue.GONE or job.get("run") in (None, "?"):
        return False
    folder = RunFolder.of(sweep_dir, job["run"])
    if folder.status().status == DONE:
        return True
    stop = job.get("stop")
    if stop is None:
        return False
    if (folder.fork(stop) / forks.CHECKPOINT).exists():
        return True
    from schedsweep.train import checkpoint  # torch: only for a run that left the queue without accounting

    return (checkpoint.step(folder.path) or 0) >= stop


def cancel(sweep_dir: Path) -> list[str]:
    """Cancel every array of the sweep that still has pending or running tasks: one scancel per array."""
    jobs = [j["job"] for js in current_jobs(sweep_dir).values() for j in js]
    arrays_ = sorted({job.split("_")[0] for job, state in squeue.states(jobs).items() if state in squeue.ACTIVE}, key=int)
    for array in arrays_:
        squeue.run(["scancel", array])
    return arrays_


