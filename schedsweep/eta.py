"""The time left in a sweep, from steps: runs of different budgets differ 10x in length, so counting runs
(what a plain progress bar does) is off by that much whenever short and long runs are unevenly done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from schedsweep import settings, store


def queue_steps(sweep_dir: Path) -> list[int]:
    """Planned steps of every run without a final status, in the order a local queue starts them
    (settings.queue_order)."""
    return [r["spec"]["steps"] for r in settings.queue_order(store.read_plan(sweep_dir))
            if store.read_status(store.run_dir(sweep_dir, r["id"])).status not in store.TERMINAL]


def remaining_s(steps: Sequence[int], finished: int, running: int, elapsed_s: float,
                since: tuple[int, int] = (0, 0)) -> float | None:
    """Seconds left for a queue of runs with `steps` planned steps each, started in that order.

    The first `finished + running` runs have started; of those, the last `running` are taken to be half
    done. With D = steps done since the point `since` = (finished, running) at which the clock started,
    L = steps left, the estimate is L x elapsed_s / D (measured time per step, overheads and parallelism
    included). None before the first run finishes: nothing is measured.
    """
    if finished <= 0 or elapsed_s <= 0:
        return None
    done = _done(steps, finished, running) - _done(steps, *since)
    left = sum(steps) - _done(steps, finished, running)
    return left * elapsed_s / done if done > 0 else None


def _done(steps: Sequence[int], finished: int, running: int) -> float:
    return sum(steps[:finished]) + sum(steps[finished:finished + running]) / 2


class Estimate:
    """The ETA of a queue as it runs, timed from the first finished run on: before it, the time goes to
    starting the workers (a Python and a torch import each, seconds), which a rate measured from the
    launch would take for training time and stretch over every step left."""

    def __init__(self, steps: Sequence[int]) -> None:
        self.steps = list(steps)
        self.since: tuple[int, int] | None = None
        self.start = 0.0

    def left_s(self, finished: int, running: int, now: float) -> float | None:
        if finished <= 0:
            return None
        if self.since is None:
            self.since, self.start = (finished, running), now
            return None
        return remaining_s(self.steps, finished, running, now - self.start, self.since)


def clock(seconds: float | None) -> str:
    """h:mm:ss, or '?' when unknown."""
    if seconds is None:
        return "?"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
