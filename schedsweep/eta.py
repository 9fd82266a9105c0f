"""The time left in a sweep, from steps: runs of different budgets differ 10x in length, so counting runs
(what a plain progress bar does) is off by that much whenever short and long runs are unevenly done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from schedsweep import store

FINISHED = ("done", "failed", "diverged", "interrupted")  # for this launch: nothing more happens to it


def queue_steps(sweep_dir: Path) -> dict[str, int]:
    """Steps each run without a final status will train, by run id: a branch trains only the steps after
    its fork (schedsweep.branching), often a handful of a long run's."""
    steps = {}
    for record in store.read_plan(sweep_dir):
        path = store.run_dir(sweep_dir, record["id"])
        if store.read_status(path).status in store.TERMINAL:
            continue
        written = store.read_json(path / store.RUN_RECORD) if (path / store.RUN_RECORD).exists() else {}
        steps[record["id"]] = record["spec"]["steps"] - (written.get("branch") or {}).get("step", 0)
    return steps


def steps_done(steps: Mapping[str, int], statuses: Mapping[str, str]) -> float:
    """Planned steps of the finished runs, plus half of those running: which runs finished, not how
    many (with several workers, or branches waiting on their forks, runs do not end in queue order)."""
    weight = {status: 1.0 for status in FINISHED} | {"running": 0.5}
    return sum(n * weight.get(statuses.get(run, "pending"), 0.0) for run, n in steps.items())


def remaining_s(done: float, left: float, elapsed_s: float) -> float | None:
    """Seconds left: `left` steps at the time per step measured so far (`done` steps in elapsed_s,
    overheads and parallelism included). None before anything is measured."""
    return left * elapsed_s / done if done > 0 and elapsed_s > 0 else None


class Estimate:
    """The ETA of a queue as it runs, timed from the first finished run on: before it, the time goes to
    starting the workers (a Python and a torch import each, seconds), which a rate measured from the
    launch would take for training time and stretch over every step left."""

    def __init__(self, steps: Mapping[str, int]) -> None:
        self.steps = dict(steps)
        self.total = sum(self.steps.values())
        self.since: tuple[float, float] | None = None  # (time, steps done) at the first finished run

    def left_s(self, statuses: Mapping[str, str], now: float) -> float | None:
        done = steps_done(self.steps, statuses)
        if self.since is None:
            if any(statuses.get(run) in FINISHED for run in self.steps):
                self.since = (now, done)
            return None
        start, done_then = self.since
        return remaining_s(done - done_then, self.total - done, now - start)


def clock(seconds: float | None) -> str:
    """h:mm:ss, or '?' when unknown."""
    if seconds is None:
        return "?"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
