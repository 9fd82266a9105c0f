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
    stopped by a signal (forwarded to the script, which checkpoints) -> requeued, and then, as for
    built-in runs (schedsweep.train.run), on SIGUSR2 under Slurm the job requeues itself and elsewhere the
    run is interrupted until the next launch; any other exit -> failed, with the tail of stderr, or the
    reason when the script never called init() or never called finish(). The runner holds the run's
    claim (one writer per run) while the script runs.

A run's identity includes the command and the SHA-256 of every file the command names that exists
(`script_identity`), so editing train.py makes new runs rather than reusing stale results.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any

from schedsweep import files
from schedsweep.sweep import store
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.errors import TaskError
from schedsweep.sweep.status import DIVERGED, DONE, FAILED, REQUEUED

ENV_RUN_DIR = "SCHEDSWEEP_RUN_DIR"  # the run's folder, for schedsweep.client.init()
SIGNALS = (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)  # Slurm's warning and requeue, Ctrl-C
TAIL_LINES = 20  # of stderr, in a failed run's status
OWN = "script"  # the optimizer label of a script run whose optimizer the user neither set nor swept
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


def sweep_optimizer(optimizer: dict[str, Any], user_keys: frozenset[str]) -> dict[str, Any] | None:
    """What a script run takes from the sweep's optimizer section; None when the user chose the optimizer.

    A script builds its own optimizer, so conf/config.yaml's default section (adamw, its lr) says nothing
    about it: unless `optimizer` was set or swept, the run keeps only the optimizer.* keys the user set
    (optimizer.lr, also when lr_mult scales it), and its label is "script". Without a chosen LR the
    script's `init(peak_lr=...)` default is the run's peak LR, which the client reports back
    (client.json -> status.json peak_lr -> the report's lr column).
    """
    if "optimizer" in user_keys:
        return None
    keep = {k for k in optimizer if f"optimizer.{k}" in user_keys} - {"_target_"}
    if "lr_mult" in user_keys and "lr" in optimizer:
        keep.add("lr")
    return {k: optimizer[k] for k in optimizer if k in keep}


@functools.lru_cache(maxsize=256)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    """Cached by (path, mtime, size): a plan of 1,000 runs naming one data file reads it once."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(path: Path, record: dict[str, Any], dist: Any, stop: Any) -> store.RunStatus:
    """Run the script of the claimed run in `path` to its end and return its status.

    Called by schedsweep.train.run's attempt, which writes the status, requeues on SIGUSR2 and removes
    the checkpoint of a done run, as for built-in runs. `stop` (train.StopFlag) records a signal,
    which is also forwarded to the script; `dist` is this process's rank in the run.
    """
    env = _environment(path, dist)
    if dist.main:
        RunFolder(path).client_file.unlink(missing_ok=True)  # what the script reports (schedsweep.client): written anew
    logs = RunFolder(path).logs
    logs.mkdir(exist_ok=True)
    name = "script" if dist.main else f"script.rank{dist.rank}"
    command = record["spec"]["task"].get("command")
    try:
        args = argv(record["spec"]["task"])
        with open(logs / f"{name}.out", "ab") as out, open(logs / f"{name}.err", "ab") as err:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    except FileNotFoundError as e:
        return store.RunStatus(FAILED, error=f"cannot start task.command {command!r}: "
                                               f"command {e.filename!r} not found (neither a file nor on PATH)")
    except (OSError, TaskError) as e:
        return store.RunStatus(FAILED, error=f"cannot start task.command {command!r}: {e}")
    return _wait(proc, path, logs / f"{name}.err", stop)


def _environment(path: Path, dist: Any) -> dict[str, str]:
    """The script's environment: the run folder, the runner's thread count, and torchrun's variables under DDP."""
    import torch

    env = dict(os.environ)  # under DDP, distributed.setup exported RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT
    if dist.world > 1:
        # The runners' own process group holds MASTER_PORT: the scripts' group meets on the next port.
        env["MASTER_PORT"] = str(int(env["MASTER_PORT"]) + 1)
    env[ENV_RUN_DIR] = str(path.resolve())
    env.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))  # executor.threads_per_run, set by train.main
    return env


def _wait(proc: subprocess.Popen[bytes], path: Path, err: Path, stop: Any) -> store.RunStatus:
    """Wait for the script, recording stop signals and forwarding them to it; then read what it reported."""
    def forward(signum: int, frame: Any) -> None:
        stop(signum, frame)
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
    stopped = [stop.signal] if stop.signal is not None else []
    return _status(code, _read_state(path), stopped, err)


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        return files.read_json(RunFolder(path).client_file)
    except (OSError, ValueError):
        return None


def _status(code: int, state: dict[str, Any] | None, stopped: list[int], err: Path) -> store.RunStatus:
    """The run's status from the script's exit code, its client.json and the signals it was sent."""
    numbers = {k: state[k] for k in ("steps_done", "final_loss", "final_eval_loss", "best_eval_loss", "wall_s")} if state else {}
    if state and state.get("peak_lr") is not None:
        numbers["peak_lr"] = float(state["peak_lr"])  # the LR the script used: the run's lr when the sweep set none
    kind = state["state"] if state else None
    if kind == "finished" and code == 0:
        return store.RunStatus(DONE, **numbers)
    if kind == DIVERGED:
        return store.RunStatus(DIVERGED, **numbers, error=state["error"])  # type: ignore[index]
    if kind == "error":
        return store.RunStatus(FAILED, **numbers, error=state["error"])  # type: ignore[index]
    if stopped or (kind == "checkpointed" and code == 0):  # signalled (through us, or the script alone), saved
        return store.RunStatus(REQUEUED, **numbers)
    if code != 0:
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return store.RunStatus(FAILED, **numbers, error=f"the script ended with {how}; the end of its stderr:\n{_tail(err)}")
    if state is None:
        return store.RunStatus(FAILED, error="the script exited without calling schedsweep.client.init(): "
                                               "add `run = schedsweep.client.init()` and log through it.")
    return store.RunStatus(FAILED, **numbers, error=f"the script exited after step {numbers['steps_done'] - 1} "
                                                      "without run.finish(): finish every run with run.finish(...).")


def _tail(err: Path, lines: int = TAIL_LINES) -> str:
    try:
        with open(err, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no stderr)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty stderr)"
