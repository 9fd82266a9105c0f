"""The `script` task: run the user's own command once per run, and turn what it did into the run's status.

    schedsweep launch task=script task.command="python train.py --data x" schedule=linear,cosine budget=0.1,1.0

The command is split like a shell would (shlex) but no shell runs it. It runs in the worker's working
folder, which every executor inherits from the folder the sweep was launched from, with the run's
folder in $SCHEDSWEEP_RUN_DIR (schedsweep.client reads it). Under several tasks per run (DDP) every
rank runs the command with torchrun's variables set: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
MASTER_ADDR, MASTER_PORT. Its stdout and stderr are appended to logs/script.out and logs/script.err
in the run's folder (logs/script.rank<r>.* for the other ranks).

The status, from client.json (written by the client) and the exit code:
    finished and exit 0 -> done; diverged -> diverged; a ClientError -> failed with its message;
    stopped by a signal (forwarded to the script, which checkpoints) -> requeued, and under Slurm on
    SIGUSR2 the job requeues itself as built-in runs do; any other exit -> failed, with the tail of
    stderr, or the reason when the script never called init() or never called finish().

A run's identity includes the command and the SHA-256 of every file the command names that exists
(`script_identity`), so editing train.py makes new runs rather than reusing stale results.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from schedsweep import store
from schedsweep.errors import TaskError

ENV_RUN_DIR = "SCHEDSWEEP_RUN_DIR"  # the run's folder, for schedsweep.client.init()
STATE = "client.json"  # what the script reports: started | checkpointed | finished | exited | diverged | error
SIGNALS = (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)  # Slurm's warning and requeue, Ctrl-C
TAIL_LINES = 20  # of stderr, in a failed run's status
EXAMPLE = 'schedsweep launch task=script task.command="python train.py --data x"'


def is_script(task: Any) -> bool:
    """Whether a task section is a script task (conf/task/script.yaml: a `command`, no `_target_`)."""
    return isinstance(task, dict) and "command" in task and "_target_" not in task


def argv(task: dict[str, Any]) -> list[str]:
    """The command as an argument list; TaskError naming task.command when it is unset or malformed."""
    command = task.get("command")
    if command is not None and not isinstance(command, str):
        raise TaskError(f"task.command must be one string (the command line); got {command!r}.")
    if command is None or command.strip() in ("", "???"):
        raise TaskError(f"task.command is not set: the script task needs the command that trains one run, as in `{EXAMPLE}`.")
    try:
        args = shlex.split(command)
    except ValueError as e:
        raise TaskError(f"task.command {command!r} cannot be split into arguments ({e}); check its quotes.") from None
    if not args:
        raise TaskError(f"task.command {command!r} is empty; give the command that trains one run, as in `{EXAMPLE}`.")
    return args


def check(task: dict[str, Any]) -> None:
    """Plan-time check of a script task: a command that splits, and no other keys than command and files."""
    argv(task)
    unknown = sorted(set(task) - {"command", "files"})
    if unknown:
        raise TaskError(f"the script task has no key(s) {', '.join(unknown)}; it takes task.command only "
                        "(the script reads everything else from schedsweep.client.init()).")


def script_identity(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with the digest of every file its script command names: task.files = {name: sha256}.

    A name is an argument (or the value of `--key=value`) that is an existing file relative to the
    current folder. Other specs are returned unchanged.
    """
    task = spec.get("task")
    if not is_script(task):
        return spec
    files = {}
    for arg in argv(task):
        for name in {arg, arg.split("=", 1)[-1]}:
            path = Path(name)
            if name and path.is_file():
                stat = path.stat()
                files[name] = _sha256(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    return {**spec, "task": {"command": task["command"], "files": files}}


@functools.lru_cache(maxsize=256)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    """Cached by (path, mtime, size): a plan of 1,000 runs naming one data file reads it once."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(path: Path, record: dict[str, Any], threads: int | None = None, max_requeues: int = 0) -> str:
    """Run the script of the run in `path` to its end and return its status (rank 0 writes it)."""
    rank, env = _environment(path, threads)
    main = rank == 0
    if main:
        (path / STATE).unlink(missing_ok=True)
        store.write_status(path, store.RunStatus("running", host=socket.gethostname(), pid=os.getpid()))
    logs = path / "logs"
    logs.mkdir(exist_ok=True)
    name = "script" if main else f"script.rank{rank}"
    start = time.perf_counter()
    stopped: list[int] = []
    try:
        args = argv(record["spec"]["task"])
        with open(logs / f"{name}.out", "ab") as out, open(logs / f"{name}.err", "ab") as err:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    except FileNotFoundError as e:
        status = store.RunStatus("failed", error=f"cannot start task.command {record['spec']['task'].get('command')!r}: "
                                                 f"command {e.filename!r} not found (neither a file nor on PATH)")
    except (OSError, TaskError) as e:
        status = store.RunStatus("failed", error=f"cannot start task.command {record['spec']['task'].get('command')!r}: {e}")
    else:
        status = _wait(proc, path, logs / f"{name}.err", stopped, time.perf_counter() - start)
    if not main:
        return status.status
    if status.status == "requeued" and stopped and stopped[0] == signal.SIGUSR2:
        from schedsweep import train

        status = train._requeue(status, max_requeues)
    store.write_status(path, status)
    if status.status in store.TERMINAL:
        from schedsweep import checkpoint  # torch: not for planning, which imports this module

        checkpoint.remove(path)
    return status.status


def _environment(path: Path, threads: int | None) -> tuple[int, dict[str, str]]:
    """This rank and the script's environment: the run folder, threads, and torchrun's variables under DDP."""
    env = dict(os.environ)
    rank = 0
    from schedsweep import distributed

    if distributed.world_size_from_env() > 1:
        import submitit

        dist = submitit.helpers.TorchDistributedEnvironment()
        rank = dist.rank
        env |= {"RANK": str(dist.rank), "WORLD_SIZE": str(dist.world_size), "LOCAL_RANK": str(dist.local_rank),
                "LOCAL_WORLD_SIZE": str(dist.local_world_size), "MASTER_ADDR": dist.master_addr,
                "MASTER_PORT": str(dist.master_port)}
    env[ENV_RUN_DIR] = str(path.resolve())
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return rank, env


def _wait(proc: subprocess.Popen[bytes], path: Path, err: Path, stopped: list[int], started_s: float) -> store.RunStatus:
    """Wait for the script, forwarding stop signals to it; then read what it reported."""
    def forward(signum: int, frame: Any) -> None:
        stopped.append(signum)
        proc.send_signal(signum)

    previous = {}
    for sig in SIGNALS:
        try:
            previous[sig] = signal.signal(sig, forward)
        except ValueError:  # not the main thread (the debug executor in a thread): no signals to forward
            pass
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return _status(code, _read_state(path), stopped, err)


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        return store.read_json(path / STATE)
    except (OSError, ValueError):
        return None


def _status(code: int, state: dict[str, Any] | None, stopped: list[int], err: Path) -> store.RunStatus:
    """The run's status from the script's exit code, its client.json and the signals it was sent."""
    numbers = {k: state[k] for k in ("steps_done", "final_loss", "final_eval_loss", "best_eval_loss", "wall_s")} if state else {}
    kind = state["state"] if state else None
    if kind == "finished" and code == 0:
        return store.RunStatus("done", **numbers)
    if kind == "diverged":
        return store.RunStatus("diverged", **numbers, error=state["error"])  # type: ignore[index]
    if kind == "error":
        return store.RunStatus("failed", **numbers, error=state["error"])  # type: ignore[index]
    if stopped or (kind == "checkpointed" and code == 0):  # signalled (through us, or the script alone), saved
        return store.RunStatus("requeued", **numbers)
    if code != 0:
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return store.RunStatus("failed", **numbers, error=f"the script ended with {how}; the end of its stderr:\n{_tail(err)}")
    if state is None:
        return store.RunStatus("failed", error="the script exited without calling schedsweep.client.init(): "
                                               "add `run = schedsweep.client.init()` and log through it.")
    return store.RunStatus("failed", **numbers, error=f"the script exited after step {numbers['steps_done'] - 1} "
                                                      "without run.finish(): finish every run with run.finish(...).")


def _tail(err: Path, lines: int = TAIL_LINES) -> str:
    try:
        with open(err, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no stderr)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty stderr)"
