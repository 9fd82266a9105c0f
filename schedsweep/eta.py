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


def remaining_s(steps: Sequence[int], finished: int, running: int, elapsed_s: float) -> float | None:
    """Seconds left for a queue of runs with `steps` planned steps each, started in that order.

    The first `finished + running` runs have started; of those, the last `running` are taken to be half
    done. With D = steps done and L = steps left, the estimate is L x elapsed_s / D (measured time per
    step, overheads and parallelism included). None before the first run finishes: nothing is measured.
    """
    started = finished + running
    if finished <= 0 or elapsed_s <= 0:
        return None
    in_flight = sum(steps[finished:started]) / 2
    done = sum(steps[:finished]) + in_flight
    left = sum(steps[started:]) + in_flight
    return left * elapsed_s / done if done > 0 else None


def clock(seconds: float | None) -> str:
    """h:mm:ss, or '?' when unknown."""
    if seconds is None:
        return "?"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
