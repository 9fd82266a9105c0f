"""How fast is planning? schedsweep's planner vs Hydra compose-per-run, on the same 10,000-run grid.

8 schedules x 5 budgets x 2 optimizers x 25 peak LRs x 5 seeds. The planner composes once per
config-group combination (16 here) and sets swept values on plain dicts; the alternative composes
every grid point with Hydra (what hydra-submitit-launcher does before submitting), timed on a
subsample and extrapolated. Run: .venv/bin/python benchmarks/plan_speed.py [--sample N]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

from schedsweep import store
from schedsweep.config import composer
from schedsweep.plan import make_plan

SCHEDULES = ["constant", "linear", "cosine", "step", "exponential", "onecycle", "rex", "wsd"]
BUDGETS = [0.02, 0.05, 0.1, 0.5, 1.0]
OPTIMIZERS = ["sgd", "adamw"]
LRS = [round(1e-4 * 1.5**i, 8) for i in range(25)]
SEEDS = range(5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=200, help="grid points composed one by one")
    args = parser.parse_args()
    overrides = [
        "task=classifier",
        f"schedule={','.join(SCHEDULES)}",
        f"budget={','.join(map(str, BUDGETS))}",
        f"optimizer={','.join(OPTIMIZERS)}",
        f"optimizer.lr={','.join(map(str, LRS))}",
        f"seed=range({len(SEEDS)})",
    ]
    make_plan(overrides[:2])  # warm imports (torch via the optimizer check), as a second launch would be

    start = time.perf_counter()
    plan = make_plan(overrides)
    plan_s = time.perf_counter() - start
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
    print(f"schedsweep plan:          {plan_s:7.3f} s  {n / plan_s:9.0f} runs/s  (incl. validation of every distinct "
          f"task/optimizer/schedule x steps)")
    print(f"write plan.jsonl:         {write_s:7.3f} s  {n / write_s:9.0f} runs/s  ({size_mb:.1f} MB)")
    print(f"hydra compose per run:    {len(sample)} composed in {compose_s:.2f} s = {compose_rate:.1f} runs/s "
          f"-> {len(grid) / compose_rate:7.1f} s for the grid (extrapolated)")
    print(f"speed-up of the planner over compose-per-run: {n / plan_s / compose_rate:.0f}x")


if __name__ == "__main__":
    main()
