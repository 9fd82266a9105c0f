"""The time left in a sweep, from steps: runs of different budgets differ 10x in length, so counting runs
(what a plain progress bar does) is off by that much whenever short and long runs are unevenly done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from schedsweep.train import metrics
from schedsweep.sweep import store
from schedsweep.sweep.run_folder import RUNS, STATUS, RunFolder
from schedsweep.sweep.status import DONE, FINAL, PENDING, RUNNING, STOPPED



def queue(sweep_dir: Path) -> dict[str, range]:
    """The steps each run without a final status will train, by run id: a branch starts at its fork
    (schedsweep.sharing.branching), often a handful of steps before a long run's end, and a stopped run where it
    stopped."""
    steps = {}
    for record in store.read_plan(sweep_dir):
        run = RunFolder.of(sweep_dir, record["id"])
        status = run.status()
        if status.status in FINAL:
            continue
        written = run.record() if run.has_record() else {}
        first = max((written.get("branch") or {}).get("step", 0), status.steps_done)
        steps[record["id"]] = range(first, record["spec"]["steps"])
    return steps


def steps_done(queue: Mapping[str, range], statuses: Mapping[str, str], reached: Callable[[str], int | None]) -> int:
    """Steps trained so far: all of a finished run's, and a running run's up to the step it has reached
    (`reached(run id)`, None when it has logged nothing yet). Which runs finished, not how many: with
    several workers, or branches waiting on their forks, runs do not end in queue order."""
    done = 0
    for run, steps in queue.items():
        status = statuses.get(run, PENDING)
        if status in STOPPED:
            done += len(steps)
        elif status == RUNNING:
            done += min(max((reached(run) or 0) - steps.start, 0), len(steps))
    return done


def remaining_s(done: float, left: float, elapsed_s: float) -> float | None:
    """Seconds left: `left` steps at the time per step measured so far (`done` steps in elapsed_s,
    overheads and parallelism included). None before anything is measured."""
    return left * elapsed_s / done if done > 0 and elapsed_s > 0 else None


# A running run's step is up to PROGRESS_S old: timed over a shorter window, that lag is a large part of
# what was trained (5 steps seen in 1.4 s instead of 1,000: an ETA of an hour for a 30 s sweep).
WINDOW_S = 10 * metrics.PROGRESS_S


class Estimate:
    """The ETA of a queue as it runs, timed from its first trained step on: before it, the time goes to
    starting the workers (a Python and a torch import each, seconds), which a rate measured from the
    launch would take for training time and stretch over every step left. None until WINDOW_S of
    training has been timed."""

    def __init__(self, queue: Mapping[str, range], reached: Callable[[str], int | None]) -> None:
        self.queue = dict(queue)
        self.reached = reached
        self.total = sum(len(steps) for steps in self.queue.values())
        self.since: tuple[float, int] | None = None  # (time, steps done) when the first step was seen

    @classmethod
    def of(cls, sweep_dir: Path) -> Estimate:
        """The estimate of a launch of `sweep_dir`, made before it starts: running runs' progress is read
        from their metrics' progress marker (schedsweep.train.metrics.reached)."""
        return cls(queue(sweep_dir), lambda run: metrics.reached(RunFolder.of(sweep_dir, run).metrics))

    def finished(self, statuses: Mapping[str, str]) -> int:
        """How many of the queue's runs have finished (for this launch)."""
        return sum(statuses.get(run) in STOPPED for run in self.queue)

    def left_s(self, statuses: Mapping[str, str], now: float) -> float | None:
        done = steps_done(self.queue, statuses, self.reached)
        if done == self.total:  # all trained: nothing left, however short the window
            return 0.0
        if self.since is None:
            if done > 0:
                self.since = (now, done)
            return None
        start, done_then = self.since
        if now - start < WINDOW_S:
            return None
        return remaining_s(done - done_then, self.total - done, now - start)


def clock(seconds: float | None) -> str:
    """h:mm:ss, or '?' when unknown."""
    if seconds is None:
        return "?"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


SAMPLED = 300  # finished runs read at most to time a task: enough for a median, quick on any results folder


def seconds_per_step(results: Path, tasks: set[str]) -> dict[str, tuple[float, int]]:
    """task -> (median seconds per step, runs timed) over finished runs of any sweep in `results`."""
    import statistics

    timed: dict[str, list[float]] = {t: [] for t in tasks}
    seen = 0
    for looked, status_file in enumerate(results.glob(f"*/{RUNS}/*/{STATUS}")):
        if seen >= SAMPLED or looked >= 20 * SAMPLED:  # a dry run stays quick in a folder of other tasks' runs
            break
        try:
            run = RunFolder(status_file.parent)
            st = run.status()
            task = run.record()["labels"]["task"]
        except (OSError, ValueError, KeyError):
            continue
        if task in timed and st.status == DONE and st.steps_done > 0 and st.wall_s > 0:
            timed[task].append(st.wall_s / st.steps_done)
            seen += 1
    return {t: (statistics.median(v), len(v)) for t, v in timed.items() if v}


def plan_estimate(runs: list[Any], results: Path, workers: int) -> tuple[float | None, str]:
    """Seconds a plan's runs would take on `workers` parallel workers, from finished runs of the same tasks
    in `results` (their seconds per step x the steps planned / workers; shared prefixes and start-up not
    counted), and what the figure rests on; (None, why) without a finished run of some task."""
    tasks = {str(r.labels["task"]) for r in runs}
    rates = seconds_per_step(results, tasks) if results.is_dir() else {}
    missing = sorted(tasks - set(rates))
    if missing:
        return None, f"no finished run of task {', '.join(missing)} in {results}/ to time it by yet"
    seconds = sum(rates[str(r.labels["task"])][0] * int(r.labels["steps"]) for r in runs) / max(1, workers)
    basis = ", ".join(f"{t}: {rate * 1000:.3g} ms/step over {n} run(s)" for t, (rate, n) in sorted(rates.items()))
    return seconds, f"{basis}; {workers} worker(s); shared prefixes and start-up not counted"
