"""A grown sweep reuses: a run finished in another sweep of the same results folder is not trained again.

Run ids are content addresses (schedsweep.plan.identity), so a run of a new sweep whose id names a run that
another sweep beside it finished (done or diverged) is that run. Its files are linked into the new sweep:
status.json and the metric parts, hard links where the file system allows (parts are never rewritten in
place, and every file is replaced by a rename, so a link never sees a change), copies otherwise. The run's
run.json says where it came from (`reused_from`). Extending a grid under a new name (the default name
changes with the grid) or another `--name` therefore trains only the new points.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Iterable

from schedsweep.sweep import store
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.sweep.status import RESULTS


def find(results: Path, this: Path, run_ids: Iterable[str]) -> dict[str, Path]:
    """run id -> the folder of a settled run with that id in another sweep of `results` (the newest first)."""
    others = [p for p in results.iterdir() if p.is_dir() and p != this and store.is_sweep(p)] if results.is_dir() else []
    others.sort(key=lambda p: (p / store.PLAN).stat().st_mtime, reverse=True)
    found: dict[str, Path] = {}
    for run_id in run_ids:
        for sweep in others:
            folder = RunFolder.of(sweep, run_id)
            if folder.has_status() and folder.status().status in RESULTS:  # a pruned run has no result to reuse
                found[run_id] = folder.path
                break
    return found


def link(source: Path, target: Path) -> None:
    """The finished run's status and metrics in `target` (hard links, else copies); nothing else."""
    run = RunFolder(source)
    files = [run.status_file, *sorted(run.metrics.glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            continue
        try:
            os.link(path, dest)
        except OSError:  # another file system, or links not allowed: a copy
            shutil.copy2(path, dest)


def summary(reused: dict[str, Path]) -> str:
    """'reused 8 finished runs of other sweeps: classifier-8runs-ed1333 (8)'; '' when none."""
    if not reused:
        return ""
    by_sweep = Counter(path.parent.parent.name for path in reused.values())
    listed = ", ".join(f"{name} ({n})" for name, n in by_sweep.most_common())
    return f"reused {len(reused)} finished run(s) of other sweeps (same run ids): {listed}"
