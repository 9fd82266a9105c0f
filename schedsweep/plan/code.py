"""The code a run trains, pinned: a digest of its task's source, the package version, and the git state of
the folder it was launched from.

A run id covers the config and a script task's files (schedsweep.plan.identity), not the Python a custom
task's class lives in nor the installed package. So each run records, when it starts, what it trains with
(its run folder's code file: schedsweep.sweep.run_folder), and a relaunch compares that with the code it would train now (schedsweep.sweep.stale):

    {"task": "mymodule.MyTask", "file": "/home/me/proj/mymodule.py", "sha256": "...", "package": "schedsweep 0.1.0",
     "git": {"commit": "...", "dirty": true, "folder": "/home/me/proj"}}

`fingerprint` is the part that decides whether two runs trained the same code: the task, its source file's
digest and the package version. The git commit is a record (a commit of other files changes nothing a run
computes), shown next to the stale runs so the user can tell which code trained them.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

CODE_DIR = "SCHEDSWEEP_CODE_DIR"  # a Slurm job's snapshot of the launch folder (schedsweep.executors.snapshot)
LAUNCH_RECORD = ".launch.json"  # in a snapshot: the launch folder and its git state when the snapshot was taken


def code_dir() -> str:
    """Where task modules are imported from: a Slurm job's snapshot, else the working directory."""
    return os.environ.get(CODE_DIR) or os.getcwd()


def _target(task: Mapping[str, Any]) -> str | None:
    target = task.get("_target_") if isinstance(task, Mapping) else None
    return target if isinstance(target, str) and "." in target else None


def task_code(task: Mapping[str, Any]) -> dict[str, Any]:
    """The comparable part: the task, the digest of its module's source file (None when it has no plain
    file, e.g. a script task, whose files the run id covers already) and the package version."""
    import schedsweep
    from schedsweep.plan import signature

    target = _target(task)
    source = None
    if target is not None:
        if code_dir() not in sys.path:  # a custom task is imported from the launch folder (or snapshot), as the run does
            sys.path.insert(0, code_dir())
        try:
            source = signature.source_path(target.rpartition(".")[0])
        except (ImportError, ValueError):
            source = None
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest() if source else None
    return {"task": target, "file": source, "sha256": digest, "package": f"schedsweep {schedsweep.__version__}"}


def fingerprint(code: Mapping[str, Any]) -> tuple[Any, ...]:
    return code.get("task"), code.get("sha256"), code.get("package")


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit checked out in `folder` and whether tracked files differ from it; None outside git."""
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
        if commit.returncode != 0:
            return None
        changes = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(changes.stdout.strip()), "folder": str(folder)}


def current(task: Mapping[str, Any], folder: Path | None = None) -> dict[str, Any]:
    """What a run of `task` trains with in this process: task_code plus the git state of `folder` (the cwd)."""
    snapshot = Path(os.environ[CODE_DIR]) / LAUNCH_RECORD if os.environ.get(CODE_DIR) else None
    if folder is None and snapshot is not None and snapshot.is_file():  # a job: the launch folder's state at launch
        import json

        return task_code(task) | {"git": json.loads(snapshot.read_text(encoding="utf-8")).get("git"), "snapshot": str(snapshot.parent)}
    return task_code(task) | {"git": git_state(folder or Path.cwd())}


def describe(code: Mapping[str, Any]) -> str:
    """One line: 'mymodule.py 3f2a9c1e, schedsweep 0.1.0, git 1a2b3c4 (dirty)'."""
    where = Path(code["file"]).name if code.get("file") else code.get("task") or "?"
    digest = f" {code['sha256'][:8]}" if code.get("sha256") else ""
    git = code.get("git") or {}
    commit = f", git {git['commit'][:7]}{' (dirty)' if git.get('dirty') else ''}" if git.get("commit") else ""
    return f"{where}{digest}, {code.get('package')}{commit}"
