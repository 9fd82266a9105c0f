"""What each attempt at a run trained with, in its run folder (the launch reads it: schedsweep.sweep.stale).

    runs/<id>/code.json       the code of the run's first step (schedsweep.plan.code): written when it starts
                              from step 0, kept when it resumes from a checkpoint
    runs/<id>/attempts.jsonl  one line when an attempt starts, one when it ends (same token): its time,
                              host, pid, Slurm job, the devices it saw (CUDA_VISIBLE_DEVICES) and its code
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any, Mapping

from schedsweep import files
from schedsweep.plan import code
from schedsweep.sweep.run_folder import RunFolder

JOB = "SCHEDSWEEP_JOB"  # the Slurm job of a packed job's worker pool (whose processes get no SLURM_* variables)


def begin(path: Path, task: Mapping[str, Any], fresh: bool) -> str:
    """Record the start of an attempt (and, from step 0, the run's code); the attempt's token."""
    from schedsweep.sweep import claims

    folder = RunFolder(path)
    now = code.current(task)
    if fresh or not folder.code_file.exists():
        files.write_json(folder.code_file, now)
    token = secrets.token_hex(6)
    files.append_jsonl(folder.attempts_file, {"token": token, "start": time.time(), "host": socket.gethostname(), "pid": os.getpid(),
                                         "job": os.environ.get(JOB) or claims.slurm_job(), "devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                                         "code": code.fingerprint(now)})
    return token


def end(path: Path, token: str, status: str) -> None:
    files.append_jsonl(RunFolder(path).attempts_file, {"token": token, "end": time.time(), "status": status})


def read(path: Path) -> dict[str, Any] | None:
    """The code the run recorded (None before its first step)."""
    try:
        return files.read_json(RunFolder(path).code_file)
    except (OSError, ValueError):
        return None


def attempts(path: Path) -> list[dict[str, Any]]:
    """Each attempt as one dict: the start line with `end` and `status` merged in when it ended."""
    lines = files.read_jsonl(RunFolder(path).attempts_file, missing_ok=True)
    ends = {line["token"]: line for line in lines if "end" in line}
    return [line | {k: v for k, v in ends.get(line["token"], {}).items() if k != "token"} for line in lines if "start" in line]
