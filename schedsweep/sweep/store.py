"""The results folder: the files every stage after planning reads and writes.

    results/<sweep>/
      sweep.yaml          the resolved sweep: base config, axes, overrides (latest launch)
      plan.jsonl          one run record per line, written before anything runs
      launches.jsonl      one line per launch: argv, time, counts
      jobs.jsonl          Slurm only: one line per submitted job: run id, job id, array id, segment (start, stop, after)
      .submitit/          executor logs (stdout/stderr of every job)
      runs/<run_id>/
        run.json          the run record; the worker reads only this
        claim.json        while a process trains the run: host, pid, Slurm job id, start, heartbeat
        claims.jsonl      one line per claim ever taken (who trained this run, and how often)
        status.json       running | requeued | interrupted | done | failed | diverged (schedsweep.sweep.status), with summary numbers
        checkpoint.pt     until the run is done or diverged: model, optimizer, step, RNG states
        forks/<k>/        shared prefixes: its state before update k, for its branches (schedsweep.sharing.forks)
        metrics/part-NNNNN.parquet   per-step metrics (schema in schedsweep.train.metrics)
        metrics/progress.json        the steps logged so far, at most 0.5 s old (the ETA and `status` read it)

A run folder without status.json is pending. Every file is written under a temporary name and
renamed into place, so a reader never sees half a file and a killed writer leaves no torn one.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from schedsweep.errors import ResultsError
from schedsweep.sweep.status import FAILED, PENDING, STATES

PLAN = "plan.jsonl"
SWEEP_CONFIG = "sweep.yaml"
LAUNCHES = "launches.jsonl"
RUNS = "runs"
RUN_RECORD = "run.json"
STATUS = "status.json"
METRICS = "metrics"
SUBMITIT = ".submitit"



def umask() -> int:
    """This process's umask, read without changing it (os.umask can only set it, racing other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write `path` under a temporary name, then rename it into place; its mode follows the umask
    (mkstemp alone makes 0600: teammates could not read a shared sweep folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_executor(sweep_dir: Path) -> dict[str, Any]:
    """The executor settings of the sweep's latest launch (sweep.yaml); {} when unreadable."""
    import yaml

    try:
        data = yaml.safe_load((sweep_dir / SWEEP_CONFIG).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    executor = data.get("executor") if isinstance(data, dict) else None
    return executor if isinstance(executor, dict) else {}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_dir(sweep_dir: Path, run_id: str) -> Path:
    return sweep_dir / RUNS / run_id


def is_sweep(path: Path) -> bool:
    return (path / PLAN).is_file()


def require_sweep(path: Path) -> Path:
    """The sweep folder at `path`, or a ResultsError saying what is wrong with it."""
    if not path.exists():
        raise ResultsError(f"results folder '{path}' does not exist.")
    if not path.is_dir():
        raise ResultsError(f"'{path}' is a file, not a results folder.")
    if not is_sweep(path):
        raise ResultsError(
            f"'{path}' is not a schedsweep sweep: it has no {PLAN}. Pass a folder made by "
            "'schedsweep launch', e.g. results/<sweep name>."
        )
    if not os.access(path / PLAN, os.R_OK):
        raise ResultsError(f"cannot read '{path / PLAN}': permission denied.")
    return path


def read_plan(sweep_dir: Path) -> list[dict[str, Any]]:
    path = require_sweep(sweep_dir) / PLAN
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ResultsError(f"'{path}' line {lineno} is not valid JSON ({e.msg}).") from None
    return records


def write_plan(sweep_dir: Path, records: Iterable[dict[str, Any]]) -> None:
    lines = (json.dumps(r, sort_keys=True, allow_nan=False) for r in records)
    atomic_write_text(sweep_dir / PLAN, "".join(line + "\n" for line in lines))


def append_jsonl(path: Path, obj: Any) -> None:
    # One short line appended in one write: the launch log is informational, not an interface.
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(obj, sort_keys=True) + "\n")


@dataclass(frozen=True)
class RunStatus:
    """What status.json holds. Losses are None when not finite or not measured."""

    status: str
    steps_done: int = 0
    final_loss: float | None = None
    final_eval_loss: float | None = None
    best_eval_loss: float | None = None
    wall_s: float = 0.0
    requeues: int = 0
    error: str | None = None
    host: str | None = None  # where a running run runs (pid on host)
    pid: int | None = None
    updated: str = field(default_factory=now)


def write_status(run_path: Path, status: RunStatus) -> None:
    write_json(run_path / STATUS, asdict(status))


def read_status(run_path: Path) -> RunStatus:
    """The run's status; `pending` when it never started, `failed` when status.json is unreadable."""
    path = run_path / STATUS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return RunStatus(PENDING, updated="")
    except (OSError, ValueError) as e:
        return RunStatus(FAILED, error=f"unreadable {path}: {e}", updated="")
    known = RunStatus.__dataclass_fields__
    status = RunStatus(**{k: v for k, v in data.items() if k in known})
    if status.status not in STATES:
        return RunStatus(FAILED, error=f"{path}: unknown status {status.status!r}", updated="")
    return status


def disk_full(error: BaseException) -> bool:
    """A write failed for want of space (ENOSPC) or quota (EDQUOT): not the run's fault. A launch stops with
    one message (cli.views.disk_full) and a relaunch resumes, rather than recording runs as failed."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
