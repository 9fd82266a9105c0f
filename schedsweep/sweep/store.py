"""The results folder: the files every stage after planning reads and writes.

    results/<sweep>/
      sweep.yaml          the resolved sweep: base config, axes, overrides (latest launch)
      plan.jsonl          one run record per line, written before anything runs
      launches.jsonl      one line per launch: argv, time, counts
      jobs.jsonl          Slurm only: one line per submitted job: run id, job id, array id, segment (start, stop, after)
      .submitit/          executor logs (stdout/stderr of every job)
      runs/<run_id>/      one folder per run: its files are named and documented in schedsweep.sweep.run_folder

Every file is written under a temporary name and renamed into place, so a reader never sees half a file and a killed writer leaves no torn one.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any, Iterable

from schedsweep import files
from schedsweep.errors import ResultsError
from schedsweep.sweep.run_folder import RUNS, RunFolder, RunStatus, now  # noqa: F401 - RUNS, now: re-exported

PLAN = "plan.jsonl"
SWEEP_CONFIG = "sweep.yaml"
LAUNCHES = "launches.jsonl"
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


def run_dir(sweep_dir: Path, run_id: str) -> Path:
    """The path of a run's folder (RunFolder.of(sweep_dir, run_id).path); kept for the tests that use it."""
    return RunFolder.of(sweep_dir, run_id).path


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


def write_status(run_path: Path, status: RunStatus) -> None:
    """RunFolder(run_path).write_status(status); kept for the tests that use it."""
    RunFolder(run_path).write_status(status)


def read_status(run_path: Path) -> RunStatus:
    """RunFolder(run_path).status(); kept for the tests that use it."""
    return RunFolder(run_path).status()


def disk_full(error: BaseException) -> bool:
    """A write failed for want of space (ENOSPC) or quota (EDQUOT): not the run's fault. A launch stops with
    one message (cli.views.disk_full) and a relaunch resumes, rather than recording runs as failed."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
