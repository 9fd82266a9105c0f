"""The code a queued Slurm job runs, pinned at launch: a snapshot of the launch folder's Python files
(submitit's RsyncSnapshot idea), so that a job that waits in the queue, or is requeued after the user edits
a task module, trains the code of its launch, not the working tree as it is later.

    <sweep>/.code/<digest>/   the .py files under the launch folder (git-tracked and untracked-not-ignored ones
                              in a git folder; else every .py file outside hidden, results and virtualenv folders)

The job starts in the snapshot (sbatch --chdir), so `python -m` puts it first on sys.path: a custom task module
and a schedsweep source checkout in the launch folder are imported from it. SCHEDSWEEP_CODE_DIR tells the task
loader to look there instead of the working directory, and SCHEDSWEEP_LAUNCH_DIR is where the run goes back to
before it trains, so relative data paths resolve as at launch. Snapshots are content-addressed: relaunching
unchanged code reuses one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from schedsweep import files
from schedsweep.plan import code

FOLDER = ".code"
CODE_DIR = code.CODE_DIR
LAUNCH_DIR = "SCHEDSWEEP_LAUNCH_DIR"
SKIP = {"results", "__pycache__", "node_modules", "site-packages"}
MAX_FILES = 5000  # a launch folder with more Python files than this is not a project: snapshot the first ones


def sources(folder: Path) -> list[Path]:
    """The Python files of `folder` a job may import, relative to it."""
    try:
        listed = subprocess.run(["git", "-C", str(folder), "ls-files", "-co", "--exclude-standard", "--", "*.py"],
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        listed = None
    if listed is not None and listed.returncode == 0:
        found = [Path(line) for line in listed.stdout.splitlines() if line]
        return sorted(p for p in found if not (set(p.parts) & SKIP) and not any(part.startswith(".") for part in p.parts)
                      and (folder / p).is_file())[:MAX_FILES]
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP and not (Path(root) / d / "pyvenv.cfg").exists())
        found += [Path(root, n).relative_to(folder) for n in sorted(names) if n.endswith(".py")]
        if len(found) >= MAX_FILES:
            break
    return found[:MAX_FILES]


def take(sweep_dir: Path, folder: Path | None = None) -> Path:
    """The snapshot of `folder` (the working directory) for this sweep's jobs, written once per content."""
    folder = (folder or Path.cwd()).resolve()
    paths = sources(folder)
    digest = hashlib.sha256()
    for p in paths:
        digest.update(str(p).encode() + b"\0" + (folder / p).read_bytes() + b"\0")
    target = sweep_dir.resolve() / FOLDER / digest.hexdigest()[:16]
    if target.is_dir():
        return target
    with files.replacing(target) as tmp:
        tmp.mkdir(parents=True)
        files.write_json(tmp / code.LAUNCH_RECORD, {"folder": str(folder), "git": code.git_state(folder)})
        for p in paths:
            (tmp / p).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / p, tmp / p)
    return target


def setup_lines(snapshot: Path, launch: Path | None = None) -> list[str]:
    """The job script's lines that point the run at the snapshot and back to the launch folder."""
    import shlex

    return [f"export {CODE_DIR}={shlex.quote(str(snapshot))}",
            f"export {LAUNCH_DIR}={shlex.quote(str((launch or Path.cwd()).resolve()))}"]


def enter_launch_dir() -> None:
    """In a job started in its snapshot: back to the launch folder (relative data paths), keeping the snapshot
    first on sys.path for imports."""
    import sys

    launch, code = os.environ.get(LAUNCH_DIR), os.environ.get(CODE_DIR)
    if not launch or not code:
        return
    if code not in sys.path:
        sys.path.insert(0, code)
    if os.getcwd() != launch and Path(launch).is_dir():
        os.chdir(launch)
