"""What does training shared prefixes once save? A WSD budget sweep with and without sharing.

WSD with a 20% cooldown and a warm-up in steps, budgets 0.1, 0.25, 0.5, 0.75 and 1.0 of full_steps, on
the classifier and on charlm, run by the debug executor (every run in one process, one thread).
Printed side by side for share_prefix=true and false: steps trained, the wall time of the queue in
process, the wall time of the same `schedsweep launch` as the user runs it (process start to exit, in a
fresh results folder), and the largest difference of final eval loss between the two sweeps' runs
(0.0 on CPU: a branch is the same run as one trained alone).

Run: .venv/bin/python benchmarks/branching.py [--no-cli] [--classifier-steps N] [--charlm-steps N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from schedsweep import collect, launch
from schedsweep.plan import make_plan

BUDGETS = "0.1,0.25,0.5,0.75,1.0"


def overrides(task: str, full_steps: int, share: bool) -> list[str]:
    warmup = max(1, full_steps // 20)  # 5% of the longest budget, in steps: the same at every budget
    return [f"task={task}", f"full_steps={full_steps}", f"budget={BUDGETS}", "schedule=wsd", "schedule.decay=0.2",
            f"schedule.warmup={warmup}", "executor=debug", "executor.threads_per_run=1", "eval_every=50",
            f"share_prefix={str(share).lower()}"]


def in_process(args: list[str], results: Path) -> tuple[float, object]:
    plan = make_plan(args)
    prepared = launch.prepare(plan, results)
    start = time.perf_counter()
    launch.run_queue(prepared.sweep_dir, dict(plan.executor))
    seconds = time.perf_counter() - start
    return seconds, collect.collect(prepared.sweep_dir).summary.set_index("run_id")


def cli(args: list[str], results: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "schedsweep", "launch", *args, "--results", str(results)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--classifier-steps", type=int, default=2000)
    parser.add_argument("--charlm-steps", type=int, default=400)
    parser.add_argument("--no-cli", action="store_true", help="skip the process-start-to-exit timings")
    options = parser.parse_args()
    from schedsweep import train  # noqa: F401 - torch imported before any timing, as for the second sweep
    print(f"WSD, 20% cooldown, warm-up 5% of full_steps in steps; budgets {BUDGETS}; debug executor, 1 thread")
    print(f"{'task':<11}{'sharing':<9}{'runs':>5}{'steps trained':>15}{'queue s':>9}{'CLI s':>8}"
          f"{'max |Δ final eval loss|':>25}")
    for task, steps in (("classifier", options.classifier_steps), ("charlm", options.charlm_steps)):
        with tempfile.TemporaryDirectory() as tmp:
            results = {}
            for share in (True, False):
                seconds, summary = in_process(overrides(task, steps, share), Path(tmp) / f"lib-{share}")
                wall = float("nan") if options.no_cli else cli(overrides(task, steps, share), Path(tmp) / f"cli-{share}")
                results[share] = (seconds, wall, summary)
            on, off = results[True][2], results[False][2]
            diff = (on["final_eval_loss"] - off.loc[on.index, "final_eval_loss"]).abs().max()
            for share in (True, False):
                seconds, wall, summary = results[share]
                trained, total = int(summary["steps_trained"].sum()), int(summary["steps_done"].sum())
                saved = f"{trained:,} (-{1 - trained / total:.0%})" if share else f"{trained:,}"
                print(f"{task:<11}{'on' if share else 'off':<9}{len(summary):>5}{saved:>15}{seconds:>9.1f}{wall:>8.1f}"
                      f"{diff if share else '':>25}")


if __name__ == "__main__":
    main()
