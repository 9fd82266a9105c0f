"""What does training shared prefixes once save? A WSD budget sweep with and without sharing.

WSD with a 20% cooldown and a warm-up in steps, budgets 0.1, 0.25, 0.5, 0.75 and 1.0 of full_steps, on
the classifier and on charlm, run by the debug executor (every run in one process, one thread).
Printed side by side for share_prefix=true and false: steps trained, the wall time of the queue in
process, the wall time of the same `schedsweep launch` as the user runs it (process start to exit, in a
fresh results folder), and the largest difference of final eval loss between the two sweeps' runs
(0.0 on CPU: a branch is the same run as one trained alone).

Each sweep is timed `--repeat` times, alternating which of the two goes first, and the fastest time is
shown: on a shared machine the load moves more than the difference being measured.

A second table (`--later`): a later launch that adds two budgets (0.375, 0.75) to a sweep whose first
launch trained 0.25, 0.5 and 1.0, with keep_trunk=every:0.125 and with keep_trunk=none: the steps the second
launch trains, its queue time, and the largest difference of the new runs' final eval loss between the two.

Run: .venv/bin/python benchmarks/branching.py [--no-cli] [--repeat N] [--tasks classifier,charlm]
     [--classifier-steps N] [--charlm-steps N] [--later | --only-later]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from schedsweep.sweep.api import Sweep

BUDGETS = "0.1,0.25,0.5,0.75,1.0"


def overrides(task: str, full_steps: int, share: bool) -> list[str]:
    warmup = max(1, full_steps // 20)  # 5% of the longest budget, in steps: the same at every budget
    return [f"task={task}", f"full_steps={full_steps}", f"budget={BUDGETS}", "schedule=wsd", "schedule.decay=0.2",
            f"schedule.warmup={warmup}", "executor=debug", "executor.threads_per_run=1", "eval_every=50",
            f"share_prefix={str(share).lower()}"]


def in_process(args: list[str], results: Path) -> tuple[float, object]:
    sweep, _ = Sweep.create(Sweep.plan(args), results)
    start = time.perf_counter()
    sweep.launch()
    seconds = time.perf_counter() - start
    return seconds, sweep.collect().summary.set_index("run_id")


def cli(args: list[str], results: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "schedsweep", "launch", *args, "--results", str(results)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


FIRST, LATER = "0.25,0.5,1.0", "0.375,0.75"


def later(task: str, full_steps: int, keep: str, results: Path) -> tuple[int, int, float, object]:
    """(steps the second launch trained, steps its runs have in all, its queue seconds, the new runs' summary)."""
    base = [a for a in overrides(task, full_steps, True) if not a.startswith("budget=")] + [f"keep_trunk={keep}"]
    first, _ = Sweep.create(Sweep.plan([*base, f"budget={FIRST}"], name="later"), results)
    first.launch()
    plan = Sweep.plan([*base, f"budget={LATER}"], name="later")
    sweep, _ = Sweep.create(plan, results)
    start = time.perf_counter()
    sweep.launch()
    seconds = time.perf_counter() - start
    summary = sweep.collect().summary.set_index("run_id").loc[[r.id for r in plan.runs]]
    return int(summary["steps_trained"].sum()), int(summary["steps_done"].sum()), seconds, summary


def main_later(task: str, full_steps: int) -> None:
    print(f"\nA later launch adds budgets {LATER} to a sweep of {FIRST} ({task}, full_steps={full_steps}, WSD as above)")
    print(f"{'keep_trunk':<14}{'2nd launch steps trained':>26}{'queue s':>9}{'max |Δ final eval loss|':>25}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = {keep: later(task, full_steps, keep, Path(tmp) / keep.replace(":", "-")) for keep in ("every:0.125", "none")}
    on, off = rows["every:0.125"][3], rows["none"][3]
    diff = (on["final_eval_loss"] - off.loc[on.index, "final_eval_loss"]).abs().max()
    for keep, (trained, total, seconds, _) in rows.items():
        shown = f"{trained:,} of {total:,}" + (f" (-{1 - trained / total:.0%})" if trained < total else "")
        print(f"{keep:<14}{shown:>26}{seconds:>9.1f}{diff if keep != 'none' else '':>25}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--classifier-steps", type=int, default=2000)
    parser.add_argument("--charlm-steps", type=int, default=400)
    parser.add_argument("--no-cli", action="store_true", help="skip the process-start-to-exit timings")
    parser.add_argument("--repeat", type=int, default=1, help="time each sweep this many times, keep the fastest")
    parser.add_argument("--tasks", default="classifier,charlm")
    parser.add_argument("--later", action="store_true", help="also the table of a later launch with kept trunks")
    parser.add_argument("--only-later", action="store_true", help="only that table")
    options = parser.parse_args()
    from schedsweep.train import run as train  # noqa: F401 - torch imported before any timing, as for the second sweep
    if options.only_later:
        for task in options.tasks.split(","):
            main_later(task, {"classifier": options.classifier_steps, "charlm": options.charlm_steps}[task])
        return
    print(f"WSD, 20% cooldown, warm-up 5% of full_steps in steps; budgets {BUDGETS}; debug executor, 1 thread")
    print(f"{'task':<11}{'sharing':<9}{'runs':>5}{'steps trained':>15}{'queue s':>9}{'CLI s':>8}"
          f"{'max |Δ final eval loss|':>25}")
    steps_of = {"classifier": options.classifier_steps, "charlm": options.charlm_steps}
    for task in options.tasks.split(","):
        steps = steps_of[task]
        with tempfile.TemporaryDirectory() as tmp:
            results: dict[bool, tuple[float, float, object]] = {}
            for r in range(options.repeat):
                for share in (True, False) if r % 2 == 0 else (False, True):
                    seconds, summary = in_process(overrides(task, steps, share), Path(tmp) / f"lib-{share}-{r}")
                    wall = math.inf if options.no_cli else cli(overrides(task, steps, share), Path(tmp) / f"cli-{share}-{r}")
                    best = results.get(share, (math.inf, math.inf, None))
                    results[share] = (min(best[0], seconds), min(best[1], wall), summary)
            on, off = results[True][2], results[False][2]
            diff = (on["final_eval_loss"] - off.loc[on.index, "final_eval_loss"]).abs().max()
            for share in (True, False):
                seconds, wall, summary = results[share]
                trained, total = int(summary["steps_trained"].sum()), int(summary["steps_done"].sum())
                saved = f"{trained:,} (-{1 - trained / total:.0%})" if share else f"{trained:,}"
                shown = "-" if math.isinf(wall) else f"{wall:.1f}"
                print(f"{task:<11}{'on' if share else 'off':<9}{len(summary):>5}{saved:>15}{seconds:>9.1f}{shown:>8}"
                      f"{diff if share else '':>25}", flush=True)
    if options.later:
        for task in options.tasks.split(","):
            main_later(task, steps_of[task])


if __name__ == "__main__":
    main()
