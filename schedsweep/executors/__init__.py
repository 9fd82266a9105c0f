"""Where runs train: the executor settings' schema, and one small interface over debug, local and Slurm.

Every executor has `submit(runs)`, `poll() -> {run folder: state}` for the runs whose state changed
since the last poll (running, requeued, interrupted, done, failed, diverged, or BUSY: trained by
another writer), and `cancel()`. `detached` executors (Slurm) keep running when the launcher stops;
the others' runs are cancelled with it. Each run is `schedsweep.train.run.main(run_dir)`, which claims
the run first, so whatever executor or process reaches a run, it is trained once.

The settings are typed once (schedsweep.executors.settings.parse): one frozen dataclass per kind.
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from schedsweep.sharing import forks
from schedsweep.sweep import store
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.sweep.claims import BUSY
from schedsweep.executors.settings import DebugSettings, LocalSettings, Settings, SlurmSettings
from schedsweep.sweep.status import FAILED, FINAL, INTERRUPTED, PENDING, RUNNING, stopped_by


def cpus() -> int:
    """CPUs this process may use: its Slurm allocation, else its affinity mask (not the machine's count)."""
    allocated = os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("SLURM_CPUS_ON_NODE")
    if allocated and allocated.isdigit():
        return int(allocated)
    return len(os.sched_getaffinity(0))


def threads(settings: DebugSettings | LocalSettings, parallel: int) -> int:
    return settings.threads_per_run or max(1, cpus() // parallel)


class Executor(Protocol):
    detached: bool  # whether its runs outlive the process that submitted them (Slurm jobs)

    def submit(self, runs: list[Path]) -> None: ...
    def poll(self) -> dict[Path, str]: ...
    def cancel(self) -> None: ...


class Debug:
    """Every run in this process, one after another (for debugging a task or a schedule)."""

    detached = False

    def __init__(self, settings: DebugSettings) -> None:
        self.threads = threads(settings, 1)
        self.queue: list[Path] = []

    def submit(self, runs: list[Path]) -> None:
        self.queue += runs

    def poll(self) -> dict[Path, str]:
        from schedsweep.train import run as train

        if not self.queue:
            return {}
        path = forks.next_ready(self.queue, idle=True)  # a branch once its fork exists
        status = train.main(str(path), self.threads)
        if status == INTERRUPTED:  # Ctrl-C reached the run: it checkpointed; the queue stops too
            raise KeyboardInterrupt
        return {path: status}

    def cancel(self) -> None:
        self.queue.clear()


class Local:
    """Runs in `max_parallel` reused worker processes on this machine (schedsweep.executors.workers: each imports
    torch once and trains run after run); a run still going after timeout_min checkpoints and stops."""

    detached = False  # the runs die with their launcher (after a checkpoint)

    def __init__(self, settings: LocalSettings) -> None:
        from schedsweep.executors import devices

        found = devices.resolve(settings.gpus)
        self.parallel = settings.parallel(cpus(), len(found))
        self.threads = threads(settings, self.parallel)
        self.timeout_s = 60 * settings.timeout_min
        # Worker k holds a device for its life: round robin, so the first workers spread over the devices.
        self.pins = [[found[k % len(found)]] for k in range(self.parallel)] if found else None
        self.queue: list[Path] = []
        self.pool: Any = None
        self.changes: dict[Path, str] = {}

    def submit(self, runs: list[Path]) -> None:
        from schedsweep.executors import workers

        self.queue += runs
        if self.pool is None and self.queue:
            size = min(self.parallel, len(self.queue))
            self.pool = workers.Pool(size, self.threads, self.timeout_s, self.pins[:size] if self.pins else None)
        self._fill()

    def poll(self) -> dict[Path, str]:
        if self.pool is not None:
            # A branch waits for its fork, which a running trunk writes mid-run: look again soon. Otherwise
            # still every few seconds, so that a progress bar's ETA follows the running runs' steps.
            waiting = bool(self.queue and self.pool.idle)
            for run in self.pool.poll(wait_s=0 if self.changes else 0.5 if waiting else 3):
                self.changes[run.run_dir] = _outcome(run.run_dir, run.status, lambda error=run.error: error)
                if self.changes[run.run_dir] == INTERRUPTED and _by_sigint(run.run_dir):
                    # Ctrl-C reached the run (the terminal signals the whole process group): the launch stops
                    # too, as in Debug, even when the run answers before this process has handled its own SIGINT.
                    raise KeyboardInterrupt
            self._fill()
            if not self.queue and not self.pool.busy:  # all handed out and back: the workers can go
                self.pool.close()
                self.pool = None
        changes, self.changes = self.changes, {}
        return changes

    def cancel(self) -> None:
        """Stop the running runs with a checkpoint (SIGTERM); the next launch resumes them."""
        self.queue.clear()
        if self.pool is not None:
            self.pool.cancel()
            self.pool.close()
            self.pool = None

    def _fill(self) -> None:
        while self.queue and self.pool.idle:
            path = forks.next_ready(self.queue, idle=not self.pool.busy)  # a branch once its fork exists
            if path is None:
                break
            self.pool.submit(path)
            self.changes[path] = RUNNING


class LocalSubmitit:
    """Multi-task (DDP) runs: one submitit LocalExecutor job per run, its tasks_per_node processes the
    run's process group; at most max_parallel at once (submitit starts every job at once and kills
    them after 2 minutes by default, so it never sees more and always gets a timeout)."""

    detached = False

    def __init__(self, settings: LocalSettings) -> None:
        from schedsweep.errors import ConfigError
        from schedsweep.executors import devices

        found = devices.resolve(settings.gpus)
        if found and not all(d.isdigit() for d in found):
            raise ConfigError(f"executor.gpus={settings.gpus!r}: DDP runs (tasks_per_node > 1) need integer device ids; "
                              f"got {', '.join(found)}.")
        if found and len(found) < settings.tasks_per_node:
            raise ConfigError(f"executor.tasks_per_node={settings.tasks_per_node}: a DDP run takes one device per process, "
                              f"but executor.gpus gives {len(found)} ({', '.join(found)}); lower tasks_per_node or give more devices.")
        self.parallel = settings.parallel(cpus(), len(found))
        self.threads = threads(settings, self.parallel)
        self.timeout_min = max(1, math.ceil(settings.timeout_min))
        self.tasks = settings.tasks_per_node
        self.slots = devices.Slots(found, settings.runs_per_gpu) if found else None
        self.held: dict[Path, list[str]] = {}  # run -> the devices its ranks use
        self.queue: list[Path] = []
        self.running: dict[Path, Any] = {}
        self.changes: dict[Path, str] = {}

    def submit(self, runs: list[Path]) -> None:
        self.queue += runs
        self._fill()

    def poll(self) -> dict[Path, str]:
        time.sleep(POLL_S)
        for path, job in list(self.running.items()):
            if job.done():
                self.changes[path] = _outcome(path, _job_result(job), lambda job=job: _job_error(job))
                del self.running[path]
                if self.slots is not None:
                    self.slots.give(self.held.pop(path))
        self._fill()
        changes, self.changes = self.changes, {}
        return changes

    def cancel(self) -> None:
        self.queue.clear()
        for job in self.running.values():
            job.cancel()

    def _fill(self) -> None:
        while self.queue and len(self.running) < self.parallel:
            path = forks.next_ready(self.queue, idle=not self.running)  # a branch once its fork exists
            if path is None:
                break
            self.running[path] = self._start(path)
            self.changes[path] = RUNNING

    def _start(self, path: Path) -> Any:
        import submitit

        from schedsweep.train import run as train

        ex = submitit.AutoExecutor(folder=RunFolder(path).logs, cluster="local")
        ex.update_parameters(timeout_min=self.timeout_min, name=f"schedsweep-{path.name}", tasks_per_node=self.tasks)
        if self.slots is None:
            return ex.submit(train.main, str(path), self.threads)
        held = self.slots.take(self.tasks)
        assert held is not None, "parallel is at most the slots' capacity"
        self.held[path] = held
        # submitit sets CUDA_VISIBLE_DEVICES for the job's processes (before torch): rank r uses cuda:r, the r-th of these.
        ex.update_parameters(gpus_per_node=len(held), visible_gpus=tuple(int(d) for d in held))
        return ex.submit(train.main, str(path), self.threads)


POLL_S = 0.2
TOP_UP_S = 10.0  # a waiting Slurm launch looks this often for room under MaxSubmitJobs


def _job_result(job: Any) -> str | None:
    try:
        return job.result()
    except Exception:  # noqa: BLE001 - a process that died is reported through the run's status
        return None


def _job_error(job: Any) -> str:
    try:
        return repr(job.exception())
    except Exception as e:  # noqa: BLE001 - the job's own failure is what we are reporting
        return repr(e)


def _by_sigint(path: Path) -> bool:
    """The run stopped with a checkpoint because it was sent SIGINT (schedsweep.train.run)."""
    return (RunFolder(path).status().error or "").startswith(stopped_by(signal.SIGINT))


def _outcome(path: Path, answer: str | None, died: Callable[[], str]) -> str:
    """How a local run's process ended: `answer` (what train.main returned, None if it died first),
    its status, or, when it died without one, interrupted (it holds a checkpoint: the next launch
    resumes it) or failed; `died` says why."""
    if answer == BUSY:
        return BUSY
    folder = RunFolder(path)
    status = folder.status()
    if status.status in FINAL or status.status == INTERRUPTED or answer == status.status == PENDING:
        return status.status  # pending: stopped at a fork step by its hold (prune_lr), the next round goes on
    error = died()
    if folder.checkpoint.exists():
        folder.write_status(store.RunStatus(INTERRUPTED, steps_done=status.steps_done, error=(
            f"the run's process ended without a status ({error}); the next launch resumes it from its checkpoint")))
        return INTERRUPTED
    folder.write_status(store.RunStatus(FAILED, error=f"the run's process ended without a status: {error}"))
    return FAILED


class Slurm:
    """Job arrays on a Slurm cluster (schedsweep.executors.slurm): submit returns once queued; poll reads the
    run folders, after settling the runs whose job left the queue without a status (reconcile)."""

    detached = True

    def __init__(self, sweep_dir: Path, settings: SlurmSettings, records: list[dict[str, Any]], poll_s: float = 2.0) -> None:
        self.sweep_dir, self.settings, self.records, self.poll_s = sweep_dir, settings, records, poll_s
        self.jobs: list[dict[str, Any]] = []
        self.active = 0  # runs skipped at submit: already pending or running on the cluster
        self.held: list[dict[str, Any]] = []  # runs over the user's MaxSubmitJobs, not submitted yet
        self.limit = 0  # that limit (0: none)
        self.seen: dict[Path, str] = {}
        self.topped = 0.0

    def submit(self, runs: list[Path]) -> None:
        from schedsweep.executors import slurm

        names = {p.name for p in runs}
        todo = [r for r in self.records if r["id"] in names]
        self.jobs, self.held, self.limit = slurm.submit_within_limit(self.sweep_dir, todo, self.settings)
        self.active = len(todo) - len(self.held) - len({j["run"] for j in self.jobs})  # a run may be several jobs (segments)
        self.seen = {p: PENDING for p in runs}
        self.topped = time.monotonic()

    def poll(self) -> dict[Path, str]:
        from schedsweep.sweep import claims
        from schedsweep.executors import slurm

        time.sleep(self.poll_s)
        if self.held and time.monotonic() - self.topped >= TOP_UP_S:  # waiting: submit held-back runs as jobs end
            jobs, self.held, _ = slurm.submit_within_limit(self.sweep_dir, self.held, self.settings)
            self.jobs += jobs
            self.topped = time.monotonic()
        slurm.reconcile(self.sweep_dir, self.records)
        paths = list(self.seen)
        changes = {}
        for path, status in zip(paths, claims.observe_all(paths)):
            if status.status != self.seen[path]:
                changes[path] = self.seen[path] = status.status
        return changes

    def cancel(self) -> None:
        from schedsweep.executors import slurm

        slurm.cancel(self.sweep_dir)


def make(settings: Settings, sweep_dir: Path, records: list[dict[str, Any]]) -> Executor:
    if isinstance(settings, DebugSettings):
        return Debug(settings)
    if isinstance(settings, LocalSettings):
        return LocalSubmitit(settings) if settings.tasks_per_node > 1 else Local(settings)
    return Slurm(sweep_dir, settings, records)
