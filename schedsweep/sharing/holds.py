"""Holds: a run told to stop at one of its fork steps until a decision lets it go on (prune_lr with shared prefixes).

    runs/<id>/hold.json   {"step": k, "why": "..."}

Under `prune_lr` (schedsweep.sweep.prune) a trunk is the longest budget's run, the last rung to be decided,
yet the smaller budgets that branch from it need its forks first. The launcher then lets the trunk train
only up to the fork its runnable branches need, and writes that step here; the loop reads it as a
segment's `until` (schedsweep.train.run.main): it keeps the fork and its own checkpoint there and stops as
`pending`. Once the budget is decided, a kept trunk's hold moves to its next fork (or goes), and it
resumes from its checkpoint: the same run, bit for bit; a pruned one stays stopped at the fork.

Written and removed only by the launcher between its rounds (no run is training then); read by the run.
"""

from __future__ import annotations

from pathlib import Path

from schedsweep import files
from schedsweep.sweep.run_folder import HOLD, RunFolder


def until(run_path: Path, until: int | None = None) -> int | None:
    """The step the run stops at: the smaller of `until` (a Slurm segment's) and its hold's, either may be absent."""
    try:
        step = int(files.read_json(RunFolder(run_path).hold_file)["step"])
    except FileNotFoundError:
        return until
    return step if until is None else min(until, step)


def write(run_path: Path, step: int, why: str) -> None:
    if until(run_path) == step:
        return
    files.write_json(RunFolder(run_path).hold_file, {"step": int(step), "why": why})


def clear(run_path: Path) -> bool:
    """Remove the run's hold; whether it had one."""
    try:
        RunFolder(run_path).hold_file.unlink()
    except FileNotFoundError:
        return False
    return True


def clear_all(sweep_dir: Path, keep: frozenset[str] | set[str] = frozenset()) -> int:
    """Remove every hold of the sweep but those of the run ids in `keep`; how many were removed."""
    removed = 0
    for path in RunFolder.glob(sweep_dir, HOLD):
        if path.parent.name not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
