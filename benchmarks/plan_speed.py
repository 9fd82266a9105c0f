"""How fast is planning? What the user waits for, and schedsweep's planner vs Hydra compose-per-run.

The 10,000-run grid: 8 schedules x 5 budgets x 2 optimizers x 25 peak LRs x 5 seeds.

1. `schedsweep launch --dry-run` of the grid as the user runs it: a fresh process, start to exit,
   cold imports included (wall and CPU seconds; the CPU figure is what a busy machine cannot inflate).
2. The planner in process: a dry run's plan (no torch import: class defaults read from source) and a
   launch's plan (every distinct task resolved and optimizer config built on a dummy parameter).
3. The alternative: composing every grid point with Hydra (what hydra-submitit-launcher does before
   submitting), timed on a subsample and extrapolated; the planner composes once per config-group
   option (11 here) and sets swept values on plain dicts.

Run: .venv/bin/python benchmarks/plan_speed.py [--sample N] [--repeat N]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from schedsweep.sweep import store
from schedsweep.plan.config import composer
from schedsweep.plan.grid import make_plan

SCHEDULES = ["constant", "linear", "cosine", "step", "exponential", "onecycle", "rex", "wsd"]
BUDGETS = [0.02, 0.05, 0.1, 0.5, 1.0]
OPTIMIZERS = ["sgd", "adamw"]
LRS = [round(1e-4 * 1.5**i, 8) for i in range(25)]
SEEDS = range(5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=200, help="grid points composed one by one")
    parser.add_argument("--repeat", type=int, default=3, help="CLI runs (the best is shown)")
    args = parser.parse_args()
    overrides = [
        "task=classifier",
        f"schedule={','.join(SCHEDULES)}",
        f"budget={','.join(map(str, BUDGETS))}",
        f"optimizer={','.join(OPTIMIZERS)}",
        f"optimizer.lr={','.join(map(str, LRS))}",
        f"seed=range({len(SEEDS)})",
    ]
    cli = [cli_dry_run(overrides) for _ in range(args.repeat)]
    cli_wall, cli_cpu = min(w for w, _ in cli), min(c for _, c in cli)
    with tempfile.TemporaryDirectory() as results:  # the same grid written (launch --no-submit), then `status`
        write_wall, write_cpu = cli_command(["launch", *overrides, "--no-submit", "--results", results, "--name", "big"])
        status_wall, status_cpu = cli_command(["status", f"{results}/big"])

    _, dry_cold_s, dry_cold_cpu = timed(make_plan, overrides, check_imports=False)  # Hydra's imports included
    _, dry_s, dry_cpu = timed(make_plan, overrides, check_imports=False)
    _, launch_cold_s, launch_cold_cpu = timed(make_plan, overrides)  # torch imported by the optimizer check
    plan, plan_s, plan_cpu = timed(make_plan, overrides)
    n = len(plan.runs)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        store.write_plan(Path(tmp), (r.record() for r in plan.runs))
        write_s = time.perf_counter() - start
        size_mb = (Path(tmp) / store.PLAN).stat().st_size / 1e6

    grid = list(itertools.product(SCHEDULES, BUDGETS, OPTIMIZERS, LRS, SEEDS))
    sample = grid[:: max(1, len(grid) // args.sample)][: args.sample]
    with composer() as c:
        start = time.perf_counter()
        for sched, budget, opt, lr, seed in sample:
            c.compose(
                ["task=classifier", f"schedule={sched}", f"budget={budget}", f"optimizer={opt}",
                 f"optimizer.lr={lr}", f"seed={seed}"],
                "config",
            )
        compose_s = time.perf_counter() - start
    compose_rate = len(sample) / compose_s

    print(f"grid: {len(SCHEDULES)} schedules x {len(BUDGETS)} budgets x {len(OPTIMIZERS)} optimizers x "
          f"{len(LRS)} lrs x {len(SEEDS)} seeds = {len(grid)} points -> {n} runs")
    print(f"launch --dry-run, process start to exit: {cli_wall:7.3f} s wall, {cli_cpu:.3f} s CPU (best of {args.repeat})")
    print(f"launch --no-submit (writes the 10,000-run folder): {write_wall:7.3f} s wall, {write_cpu:.3f} s CPU "
          f"({write_cpu / cli_cpu:.1f}x the dry run's CPU)")
    print(f"status of that folder:    {status_wall:7.3f} s wall, {status_cpu:.3f} s CPU ({status_cpu / cli_cpu:.1f}x the dry run's CPU)")
    print(f"dry-run plan in process:  {dry_s:7.3f} s  {n / dry_s:9.0f} runs/s  ({dry_cpu:.3f} s CPU; first in the process: "
          f"{dry_cold_s:.3f} s, {dry_cold_cpu:.3f} s CPU)")
    print(f"launch plan in process:   {plan_s:7.3f} s  {n / plan_s:9.0f} runs/s  ({plan_cpu:.3f} s CPU; first, importing torch: "
          f"{launch_cold_s:.3f} s, {launch_cold_cpu:.3f} s CPU; every distinct task/optimizer/schedule x steps validated)")
    print(f"write plan.jsonl:         {write_s:7.3f} s  {n / write_s:9.0f} runs/s  ({size_mb:.1f} MB)")
    print(f"hydra compose per run:    {len(sample)} composed in {compose_s:.2f} s = {compose_rate:.1f} runs/s "
          f"-> {len(grid) / compose_rate:7.1f} s for the grid (extrapolated)")
    print(f"speed-up of the planner over compose-per-run: {n / plan_s / compose_rate:.0f}x")


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def cli_dry_run(overrides: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of `python -m schedsweep launch --dry-run` from process start to exit."""
    return cli_command(["launch", "--dry-run", *overrides])


def cli_command(args: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of `python -m schedsweep ARGS` from process start to exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "schedsweep", *args], check=True,
                   stdout=subprocess.DEVNULL, env=os.environ | {"COLUMNS": "200"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


if __name__ == "__main__":
    main()
