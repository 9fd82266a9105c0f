"""A pool of worker processes for the local executor: each imports torch once, then trains runs one after
another by calling the execution seam `schedsweep.train.run.main(run_dir, threads)`.

A fresh Python with torch per run costs seconds; a worker that is already up starts a run in milliseconds.
Workers are plain subprocesses (`python -m schedsweep.executors.workers THREADS`) with a line protocol, not
multiprocessing: the launcher writes a run folder per line on a worker's stdin, the worker answers one JSON
line `{"status": ...}` on its stdout. Nothing is pickled, a worker is an ordinary process the launcher
signals by pid, and its death is an end of file on its stdout. Isolation from the launcher and between runs:

- a worker that dies (crash, OOM kill, SIGKILL) fails only the run it held; the next submit starts a new one;
- SIGTERM (the timeout, cancel) and SIGINT (Ctrl-C in a terminal reaches the whole process group) reach
  the run's handler in train.main, which checkpoints at the next step boundary; between runs a worker
  ignores them;
- a run's stdout and stderr go to `<run>/logs/run.log`; the protocol keeps its own copy of the pipe;
- on Linux a worker whose launcher dies gets SIGTERM (the parent-death signal), so its run checkpoints
  and a relaunch resumes it, instead of a second process training the same run.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Sequence

from schedsweep.sweep import store
from schedsweep.sweep.run_folder import RunFolder

SIGNAL_EVERY_S = 1.0  # a signal is re-sent until the run answers: one sent before its handler is up is ignored
GRACE_S = 30.0  # after the first signal, the run has this long to checkpoint before it is killed


@dataclass(frozen=True)
class Finished:
    run_dir: Path
    status: str | None  # the status train.main returned; None when the worker died first
    error: str = ""  # why there is no status


@dataclass
class _Worker:
    proc: subprocess.Popen[str]
    slot: int = 0  # its place in the pool, which fixes its device (CUDA_VISIBLE_DEVICES) for its whole life
    run_dir: Path | None = None
    started: float = float("inf")  # when the worker began the current run
    stop_by: float | None = None  # when the current run was first signalled to stop
    signalled: float = 0.0


class Pool:
    """At most `size` workers with `threads` torch threads each. A run still going `timeout_s` after it
    started is sent SIGTERM (it checkpoints, stops, and returns `interrupted`), and killed GRACE_S later.
    `pins`: the device ids of each worker (schedsweep.executors.devices): worker k, and any worker that
    replaces it, sees only pins[k] as its CUDA devices."""

    def __init__(self, size: int, threads: int, timeout_s: float = float("inf"),
                 pins: Sequence[Sequence[str]] | None = None) -> None:
        self.size, self.threads, self.timeout_s = size, threads, timeout_s
        self.pins = [list(p) for p in pins] if pins else [[] for _ in range(size)]
        if len(self.pins) != size:
            raise ValueError(f"{len(self.pins)} device pins for {size} workers")
        self._workers: list[_Worker] = []
        self._events: queue.Queue[tuple[_Worker, str | None]] = queue.Queue()
        for slot in range(size):  # all at once: their torch imports overlap
            self._start(slot)

    @property
    def busy(self) -> int:
        return sum(w.run_dir is not None for w in self._workers)

    @property
    def idle(self) -> int:
        return self.size - self.busy

    def submit(self, run_dir: Path) -> None:
        """Give the run to an idle worker (starting one if a worker died); the pool must have one idle."""
        if not self.idle:
            raise RuntimeError("no idle worker: poll() until a run finishes")
        while True:
            worker = next((w for w in self._workers if w.run_dir is None), None) or self._start(self._free_slot())
            try:
                assert worker.proc.stdin is not None
                worker.proc.stdin.write(f"{run_dir}\n")
                worker.proc.stdin.flush()
            except (BrokenPipeError, OSError):  # it died while idle: its end of file is ignored
                self._workers.remove(worker)
                continue
            worker.run_dir, worker.started, worker.stop_by = run_dir, float("inf"), None  # until it says "started"
            return

    def poll(self, wait_s: float) -> list[Finished]:
        """Runs finished since the last call, waiting up to `wait_s` for the first one."""
        deadline = time.monotonic() + wait_s
        finished: list[Finished] = []
        while not finished:
            self._enforce_timeouts()
            left = deadline - time.monotonic()
            try:
                event = self._events.get(timeout=max(0.0, min(left, SIGNAL_EVERY_S)))
            except queue.Empty:
                if left <= SIGNAL_EVERY_S:
                    return finished
                continue
            while True:
                done = self._handle(*event)
                if done is not None:
                    finished.append(done)
                try:
                    event = self._events.get_nowait()
                except queue.Empty:
                    break
        return finished

    def cancel(self) -> list[Finished]:
        """Stop every running run with a checkpoint (SIGTERM; killed if it has not stopped GRACE_S later)."""
        now = time.monotonic()
        for worker in self._workers:
            if worker.run_dir is not None and worker.stop_by is None:
                worker.stop_by = now
                self._signal(worker, signal.SIGTERM)
        finished: list[Finished] = []
        while self.busy:
            finished += self.poll(SIGNAL_EVERY_S)
        return finished

    def close(self) -> None:
        """End every worker: idle ones exit at the end of their input; any still running is killed."""
        for worker in self._workers:
            if worker.run_dir is not None:
                worker.proc.kill()
            if worker.proc.stdin is not None:
                try:
                    worker.proc.stdin.close()
                except OSError:
                    pass
        for worker in self._workers:
            try:
                worker.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        self._workers.clear()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _free_slot(self) -> int:
        taken = {w.slot for w in self._workers}
        return next(k for k in range(self.size) if k not in taken)

    def _start(self, slot: int) -> _Worker:
        from schedsweep.executors import devices

        # SLURM_* variables of an enclosing allocation would make a run think it is a Slurm job (and requeue it).
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")} | devices.env(self.pins[slot])
        proc = subprocess.Popen(
            [sys.executable, "-m", "schedsweep.executors.workers", str(self.threads), str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env,
        )
        worker = _Worker(proc, slot)
        self._workers.append(worker)
        threading.Thread(target=self._read, args=(worker,), daemon=True).start()
        return worker

    def _read(self, worker: _Worker) -> None:
        assert worker.proc.stdout is not None
        for line in worker.proc.stdout:
            self._events.put((worker, line))
        worker.proc.wait()
        self._events.put((worker, None))

    def _handle(self, worker: _Worker, line: str | None) -> Finished | None:
        run_dir = worker.run_dir
        if line is not None:
            answer = json.loads(line)
            if "started" in answer:  # the timeout counts from here, not from a worker's torch import
                worker.started = time.monotonic()
                return None
            worker.run_dir = None
            if answer.get("disk_full"):  # the launcher stops with one message (cli.views.disk_full); a relaunch resumes
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(run_dir))
            return Finished(run_dir, answer["status"], answer.get("error", "")) if run_dir else None
        if worker in self._workers:
            self._workers.remove(worker)
        if run_dir is None:
            return None
        code = worker.proc.returncode
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return Finished(run_dir, None, f"its worker process ended with {how} (see {RunFolder(run_dir).run_log})")

    def _enforce_timeouts(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            if worker.run_dir is None:
                continue
            if worker.stop_by is None and now - worker.started >= self.timeout_s:
                worker.stop_by = now
            if worker.stop_by is None:
                continue
            if now - worker.stop_by >= GRACE_S:
                worker.proc.kill()
            elif now - worker.signalled >= SIGNAL_EVERY_S:
                self._signal(worker, signal.SIGTERM)

    def _signal(self, worker: _Worker, sig: int) -> None:
        worker.signalled = time.monotonic()
        try:
            worker.proc.send_signal(sig)
        except ProcessLookupError:  # already gone: its end of file reports it
            pass


def serve(threads: int, launcher_pid: int, commands: IO[str]) -> None:
    """The worker's loop: one run per line of `commands`, one JSON answer per run on the original stdout."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)  # train.main handles them while a run trains
    _die_with(launcher_pid)
    from schedsweep.train import run as train  # torch, once per worker

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    quiet = os.dup(2)
    for line in commands:
        run_dir = Path(line.rstrip("\n"))
        answer: dict[str, Any]
        answers.write(json.dumps({"started": str(run_dir)}) + "\n")
        try:
            answer = _one(run_dir, threads, train, quiet)
        except OSError as e:  # a full disk, even for the run's log: said once by the launcher, not as a traceback
            if not store.disk_full(e):
                raise
            answer = {"status": None, "error": f"OSError: {os.strerror(e.errno)}", "disk_full": True}
        try:
            answers.write(json.dumps(answer) + "\n")
        except BrokenPipeError:  # the launcher is gone (Ctrl-C): the run's status is on disk already
            return


def _one(run_dir: Path, threads: int, train: Any, quiet: int) -> dict[str, Any]:
    """Train one run with this process's stdout and stderr in its log; the answer to the launcher."""
    RunFolder(run_dir).logs.mkdir(parents=True, exist_ok=True)
    with RunFolder(run_dir).run_log.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            return {"status": train.main(str(run_dir), threads)}
        except Exception as e:  # train.main reports training errors itself; this is its set-up failing
            if store.disk_full(e):
                raise
            traceback.print_exc()
            return {"status": None, "error": traceback.format_exc().strip().splitlines()[-1]}
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os.dup2(quiet, 1)
                os.dup2(quiet, 2)


def _die_with(launcher_pid: int) -> None:
    """SIGTERM this worker when the launcher dies (Linux), so no orphan keeps training a run."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != launcher_pid:  # it died before the call
        sys.exit(0)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), sys.stdin)
