"""Launch: write the plan, then run every unfinished run through an executor.

`prepare` writes the sweep folder (plan, resolved config, one run.json per run) and decides what to
run: runs already done, diverged or failed are skipped (failed ones are re-run with retry_failed).
`run_queue` then runs everything in the plan that has no final status, so a queue started later
(`--no-wait` detaches one) or a relaunch after a crash picks up exactly what is left.

The local executor trains in a pool of reused worker processes (schedsweep.workers): at most
max_parallel runs at once, each stopped with a checkpoint after timeout_min.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from schedsweep import store
from schedsweep.errors import ConfigError, ResultsError
from schedsweep.plan import Plan

EXECUTOR_KEYS = {
    "local": ("kind", "max_parallel", "threads_per_run", "timeout_min", "tasks_per_node"),
    "debug": ("kind", "threads_per_run"),
    "slurm": (
        "kind", "partition", "account", "qos", "constraint", "nodes", "gpus_per_node", "tasks_per_node",
        "cpus_per_task", "mem_gb", "time_min", "time_per_step_s", "time_safety", "time_by_budget",
        "array_parallelism", "signal_delay_s", "max_requeues", "setup", "additional_parameters",
    ),
}
POLL_S = 0.2
Progress = Callable[[Counter[str]], None]


@dataclass(frozen=True)
class Prepared:
    sweep_dir: Path
    planned: int  # runs in this launch's plan
    total: int  # runs in the sweep folder's plan (earlier launches included)
    to_run: int
    skipped: Counter[str]  # final statuses left alone, by status


def check_executor(cfg: dict[str, Any]) -> dict[str, Any]:
    kind = cfg.get("kind")
    if kind not in EXECUTOR_KEYS:
        raise ConfigError(f"unknown executor kind {kind!r}. Valid: {', '.join(EXECUTOR_KEYS)} (conf/executor/).")
    unknown = sorted(set(cfg) - set(EXECUTOR_KEYS[kind]))
    if unknown:
        raise ConfigError(
            f"executor '{kind}' has no key(s) {', '.join(unknown)}. Valid keys: {', '.join(EXECUTOR_KEYS[kind])}."
        )
    for key in ("max_parallel", "threads_per_run", "timeout_min", "tasks_per_node"):
        value = cfg.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ConfigError(f"executor.{key} must be null or a number > 0; got {value!r}.")
    if kind == "slurm":
        from schedsweep import slurm

        slurm.check_executor(cfg)
    return cfg


@contextmanager
def sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """One launcher per sweep at a time, so no run is started twice."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with (sweep_dir / ".lock").open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise ResultsError(
                f"sweep '{sweep_dir}' is being run by another schedsweep process (pid {holder}). "
                f"Wait for it, or follow it with 'schedsweep status {sweep_dir}'."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prepare(plan: Plan, results: Path, *, retry_failed: bool = False, argv: list[str] | None = None) -> Prepared:
    """Write the sweep folder and mark what will run. Existing results are never overwritten."""
    sweep_dir = results / plan.name
    for folder in (results, sweep_dir):
        if folder.exists() and not folder.is_dir():
            raise ResultsError(f"results path '{folder}' is a file, not a folder.")
    if results.exists() and not os.access(results, os.W_OK):
        raise ResultsError(f"cannot write to results folder '{results}': permission denied.")
    with sweep_lock(sweep_dir):
        known = store.read_plan(sweep_dir) if store.is_sweep(sweep_dir) else []
        known_ids = {r["id"] for r in known}
        records = known + [r.record() for r in plan.runs if r.id not in known_ids]
        store.write_plan(sweep_dir, records)
        store.atomic_write_text(sweep_dir / store.SWEEP_CONFIG, _sweep_yaml(plan))
        store.append_jsonl(
            sweep_dir / store.LAUNCHES,
            {"time": store.now(), "argv": argv or [], "runs": len(plan.runs), "retry_failed": retry_failed},
        )
        skipped: Counter[str] = Counter()
        to_run = 0
        for run in plan.runs:
            path = store.run_dir(sweep_dir, run.id)
            status = store.read_status(path).status
            if status == "failed" and retry_failed:
                (path / store.STATUS).rename(path / "status.previous.json")
            elif status in store.TERMINAL:
                skipped[status] += 1
                continue
            if not (path / store.RUN_RECORD).exists():
                store.write_json(path / store.RUN_RECORD, run.record())
            to_run += 1
    return Prepared(sweep_dir, len(plan.runs), len(records), to_run, skipped)


def _sweep_yaml(plan: Plan) -> str:
    doc = {
        "name": plan.name,
        "overrides": list(plan.overrides),
        "axes": {a.key: list(a.values) for a in plan.axes},
        "executor": plan.executor,
        "config": plan.base,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def counts(sweep_dir: Path) -> Counter[str]:
    return Counter(store.read_status(store.run_dir(sweep_dir, r["id"])).status for r in store.read_plan(sweep_dir))


def run_queue(sweep_dir: Path, executor: dict[str, Any], progress: Progress | None = None) -> Counter[str]:
    """Run every planned run without a final status; return the sweep's status counts."""
    check_executor(executor)
    with sweep_lock(sweep_dir):
        todo = [
            store.run_dir(sweep_dir, r["id"])
            for r in store.read_plan(sweep_dir)
            if store.read_status(store.run_dir(sweep_dir, r["id"])).status not in store.TERMINAL
        ]
        state = counts(sweep_dir)
        # Statuses left at "running" belong to a dead process: those runs start (or resume) now.
        state["pending"] += state.pop("running", 0) + state.pop("requeued", 0)
        report = progress or (lambda _: None)
        report(state)
        if executor["kind"] == "debug":
            _run_debug(todo, executor, state, report)
        else:
            _run_local(todo, executor, state, report)
    return state


def _threads(executor: dict[str, Any], parallel: int) -> int:
    return int(executor.get("threads_per_run") or max(1, (os.cpu_count() or 1) // parallel))


def _run_debug(todo: list[Path], executor: dict[str, Any], state: Counter[str], report: Progress) -> None:
    from schedsweep import train

    threads = _threads(executor, 1)
    for path in todo:
        state["pending"] -= 1
        state["running"] += 1
        report(state)
        status = train.main(str(path), threads)
        state["running"] -= 1
        state[status] += 1
        report(state)


def _run_local(todo: list[Path], executor: dict[str, Any], state: Counter[str], report: Progress) -> None:
    """Runs in a pool of worker processes (schedsweep.workers); multi-task DDP runs through submitit."""
    from schedsweep import workers

    parallel = int(executor.get("max_parallel") or os.cpu_count() or 1)
    if int(executor.get("tasks_per_node") or 1) > 1:
        return _run_submitit(todo, executor, state, report, parallel)
    queue = list(reversed(todo))
    with workers.Pool(min(parallel, len(todo)), _threads(executor, parallel), 60 * float(executor.get("timeout_min") or 1440)) as pool:
        try:
            while queue or pool.busy:
                while queue and pool.idle:
                    pool.submit(queue.pop())
                    state["pending"] -= 1
                    state["running"] += 1
                    report(state)
                for run in pool.poll(wait_s=60):
                    state["running"] -= 1
                    state[_final_status(run.run_dir, lambda error=run.error: error)] += 1
                    report(state)
        except BaseException:
            pool.cancel()  # each running run checkpoints; a relaunch resumes it
            raise


def _run_submitit(todo: list[Path], executor: dict[str, Any], state: Counter[str], report: Progress, parallel: int) -> None:
    """One submitit LocalExecutor job per run: its tasks_per_node processes form the run's process group."""
    import submitit

    from schedsweep import train

    threads = _threads(executor, parallel)
    timeout_min = max(1, int(executor.get("timeout_min") or 1440))
    queue = list(reversed(todo))
    running: dict[Any, Path] = {}
    try:
        while queue or running:
            while queue and len(running) < parallel:
                path = queue.pop()
                ex = submitit.AutoExecutor(folder=path / "logs", cluster="local")
                ex.update_parameters(timeout_min=timeout_min, name=f"schedsweep-{path.name}", tasks_per_node=int(executor["tasks_per_node"]))
                running[ex.submit(train.main, str(path), threads)] = path
                state["pending"] -= 1
                state["running"] += 1
                report(state)
            time.sleep(POLL_S)
            for job in [j for j in running if j.done()]:
                path = running.pop(job)
                status = _final_status(path, lambda job=job: _job_error(job))
                state["running"] -= 1
                state[status] += 1
                report(state)
    except BaseException:
        for job in running:
            job.cancel()
        raise


def _job_error(job: Any) -> str:
    try:
        return repr(job.exception())
    except Exception as e:  # noqa: BLE001 - the job's own failure is what we are reporting
        return repr(e)


def _final_status(path: Path, died: Callable[[], str]) -> str:
    """The run's final status, written as failed when its process stopped it early (`died`: why, if it left none)."""
    status = store.read_status(path)
    if status.status in store.TERMINAL:
        return status.status
    if status.status == "requeued":  # stopped at a checkpoint by a signal (e.g. the local timeout)
        store.write_status(path, store.RunStatus("failed", steps_done=status.steps_done, error=(
            f"stopped by a signal at step {status.steps_done} (executor.timeout_min?); its checkpoint is kept: "
            "relaunch with --retry-failed to resume")))
        return "failed"
    # The process died without writing its status: killed, timed out, or could not start.
    store.write_status(path, store.RunStatus("failed", error=f"the run's process ended without a status: {died()}"))
    return "failed"


def submit_slurm(sweep_dir: Path, executor: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Queue every unfinished run not already pending or running on the cluster: (new jobs, runs skipped)."""
    from schedsweep import slurm

    check_executor(executor)
    with sweep_lock(sweep_dir):
        todo = [r for r in store.read_plan(sweep_dir)
                if store.read_status(store.run_dir(sweep_dir, r["id"])).status not in store.TERMINAL]
        jobs = slurm.submit(sweep_dir, todo, executor)
    return jobs, len(todo) - len(jobs)


def follow_slurm(sweep_dir: Path, progress: Progress, poll_s: float = 2.0) -> Counter[str]:
    """Wait for the sweep's jobs, from the run folders and one squeue + sacct call per refresh."""
    from schedsweep import slurm

    records = store.read_plan(sweep_dir)
    while True:
        slurm.reconcile(sweep_dir, records)
        state = counts(sweep_dir)
        progress(state)
        if not any(state[s] for s in ("pending", "running", "requeued")):
            return state
        time.sleep(poll_s)


def spawn_queue(sweep_dir: Path) -> int:
    """Start the queue in a detached process (for --no-wait); return its pid."""
    log = (sweep_dir / "queue.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "schedsweep.launch", str(sweep_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc.pid


if __name__ == "__main__":
    sweep = Path(sys.argv[1])
    final = run_queue(sweep, store.read_executor(sweep))
    print(dict(final), flush=True)
