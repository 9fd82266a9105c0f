"""What does a small local run cost beyond its training? Three ways to run the same sweep, side by side:

  submitit  one fresh Python (with torch) per run through submitit's LocalExecutor: the local executor before
            the pool, and still the path of multi-task (DDP) runs
  pool      the local executor: reused worker processes (schedsweep.executors.workers)
  debug     every run in the launcher's own process, one after another

Each is timed twice: as the user waits (process start to exit of `schedsweep launch`, cold imports and
planning included) and in process (Sweep.launch alone, the figure the overhead comes from). Per-run
overhead = (queue wall time x runs at once - training time the runs report) / runs: the seconds of a core
each run costs outside its training loop. Then the `make demo` sweep (48 runs) with the pool, and how
right the step-based ETA was after the first tenth of its runs.
Run: .venv/bin/python benchmarks/local_speed.py [--runs 20] [--parallel 2] [--old-demo]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from schedsweep import executors
from schedsweep.sweep import eta, store
from schedsweep.plan.grid import make_plan
from schedsweep.sweep.api import Sweep

TINY = ["task=classifier", "budget=1.0", "full_steps=20", "eval_every=5", "task.n_train=256", "task.hidden=16"]
# The CLI with the local executor's queue swapped for the per-run submitit path (as before the pool).
OLD_CLI = ("import sys; from schedsweep import cli, executors; executors.Local = executors.LocalSubmitit; "
           "sys.argv[0] = 'schedsweep'; cli.main()")
PATHS = {"submitit": "local", "pool": "local", "debug": "debug"}


def user_wait(path: str, overrides: list[str], results: Path) -> float:
    """Seconds from process start to exit of `schedsweep launch` (exit code checked)."""
    cli = [sys.executable, "-c", OLD_CLI] if path == "submitit" else [sys.executable, "-m", "schedsweep"]
    env = os.environ | {"COLUMNS": "200"}
    start = time.perf_counter()
    subprocess.run([*cli, "launch", *overrides, f"executor={PATHS[path]}", "--results", str(results), "--name", path],
                   check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def in_process(path: str, overrides: list[str], results: Path,
               watch: Callable[[Path], Any] | None = None) -> tuple[float, float, Any]:
    """(seconds of Sweep.launch, training seconds the runs report, the watch): `watch(sweep folder)` is
    the progress callback."""
    plan = make_plan([*overrides, f"executor={PATHS[path]}"], name=path)
    sweep, _ = Sweep.create(plan, results)
    progress = watch(sweep.path) if watch else None
    local = executors.Local
    if path == "submitit":
        executors.Local = executors.LocalSubmitit  # type: ignore[misc]
    try:
        start = time.perf_counter()
        final = sweep.launch(dict(plan.executor), progress=progress)
        wall = time.perf_counter() - start
    finally:
        executors.Local = local  # type: ignore[misc]
    assert final is not None and final["done"] == len(plan.runs), final
    return wall, sum(store.read_status(store.run_dir(sweep.path, r.id)).wall_s or 0.0 for r in plan.runs), progress


class EtaCheck:
    """The estimate the progress bar shows (schedsweep.sweep.eta.Estimate) once another tenth of the runs has
    finished (the first one shown from then on: none is shown before eta.WINDOW_S of training was timed):
    `marks` holds (tenths, share of runs finished then, time, seconds predicted left), to compare with the
    time the rest really took (`errors`)."""

    def __init__(self, sweep_dir: Path) -> None:
        self.estimate = eta.Estimate.of(sweep_dir)  # what the progress bar starts from
        self.runs = len(self.estimate.queue)
        self.marks: list[tuple[int, float, float, float]] = []

    def __call__(self, state: Counter[str], statuses: dict[str, str]) -> None:
        now = time.perf_counter()
        left = self.estimate.left_s(statuses, now)  # called each poll, as the progress bar is
        finished = self.estimate.finished(statuses) / max(self.runs, 1)
        tenths = int(10 * finished + 1e-9)
        if left is not None and 0 < tenths < 10 and tenths > (self.marks[-1][0] if self.marks else 0):
            self.marks.append((tenths, finished, now, left))

    def errors(self, end: float) -> list[tuple[float, float, float]]:
        """(share of runs finished, seconds predicted, seconds taken) for each mark."""
        return [(finished, left, end - at) for _, finished, at, left in self.marks]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20, help="tiny runs (20 steps of the classifier each)")
    parser.add_argument("--parallel", type=int, default=2, help="executor.max_parallel of the local paths")
    parser.add_argument("--old-demo", action="store_true", help="also time the demo through submitit (minutes)")
    args = parser.parse_args()
    tiny = [*TINY, f"seed=range({args.runs})", "executor.threads_per_run=1"]
    print(f"{executors.cpus()} cores, load average {os.getloadavg()[0]:.1f}; {args.runs} runs x 20 steps, "
          f"{args.parallel} at once (debug: 1)")
    print(f"{'':10} {'user waits':>11} {'in process':>11} {'training':>9} {'per-run overhead':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        for path in PATHS:
            mine = tiny if path == "debug" else [*tiny, f"executor.max_parallel={args.parallel}"]  # debug has no such key
            wait = user_wait(path, mine, Path(tmp) / "cli")
            wall, trained, _ = in_process(path, mine, Path(tmp) / "lib")
            cores = 1 if path == "debug" else args.parallel
            print(f"{path:10} {wait:10.1f}s {wall:10.1f}s {trained:8.1f}s {(wall * cores - trained) / args.runs:16.2f}s")

        demo = ["+study=demo"]
        print(f"make demo's sweep (48 runs; executor defaults: {executors.cpus()} at once):")
        for path in ("pool", "debug", *(("submitit",) if args.old_demo else ())):
            wait = user_wait(path, demo, Path(tmp) / "demo-cli")
            wall, trained, check = in_process(path, demo, Path(tmp) / "demo-lib", EtaCheck)
            end = time.perf_counter()
            line = f"{path:10} {wait:10.1f}s {wall:10.1f}s {trained:8.1f}s"
            if check.marks:
                finished, predicted, actual = check.errors(end)[0]
                line += (f"   first ETA after a tenth of the runs (at {100 * finished:.0f}%): {predicted:.1f}s shown, "
                         f"{actual:.1f}s taken ({100 * (predicted - actual) / actual:+.0f}%)")
            print(line)


if __name__ == "__main__":
    main()
