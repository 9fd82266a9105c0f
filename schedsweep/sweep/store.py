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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from schedsweep import files
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



def read_executor(sweep_dir: Path) -> dict[str, Any]:
    """The executor settings of the sweep's latest launch (sweep.yaml); {} when unreadable."""
    return _sweep_section(sweep_dir, "executor")


def read_rank_by(sweep_dir: Path) -> dict[str, Any]:
    """The study's report block of the sweep's latest launch (sweep.yaml; schedsweep.plan.ranking); {} when none."""
    return _sweep_section(sweep_dir, "report")


def _sweep_section(sweep_dir: Path, key: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load((sweep_dir / SWEEP_CONFIG).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    section = data.get(key) if isinstance(data, dict) else None
    return section if isinstance(section, dict) else {}


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
    return files.read_jsonl(require_sweep(sweep_dir) / PLAN)


def write_plan(sweep_dir: Path, records: Iterable[dict[str, Any]]) -> None:
    lines = (json.dumps(r, sort_keys=True, allow_nan=False) for r in records)
    files.write_text(sweep_dir / PLAN, "".join(line + "\n" for line in lines))


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
    trial_steps: int = 0  # of steps_done, the updates an adaptive schedule's trials took and rewound (AutoLRS)
    peak_lr: float | None = None  # a script run's peak LR as its client reported it (schedsweep.train.script)
    error: str | None = None
    host: str | None = None  # where a running run runs (pid on host)
    pid: int | None = None
    updated: str = field(default_factory=now)


def write_status(run_path: Path, status: RunStatus) -> None:
    files.write_json(run_path / STATUS, asdict(status))


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
