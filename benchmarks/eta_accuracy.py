"""How right is the progress bar's ETA? Launches a sweep (any overrides, e.g. a study) in this process
with the local executor, records the estimate the progress bar shows (schedsweep.sweep.eta.Estimate) each time
another tenth of the runs has finished (the first one shown from then on), and prints it beside the time
the rest of the sweep really took.
A relaunch of an existing sweep (same --name and --results) trains only what is left, as the CLI does.

Run: .venv/bin/python benchmarks/eta_accuracy.py +study=demo [--name NAME] [--results DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from local_speed import EtaCheck  # noqa: E402

from schedsweep import executors  # noqa: E402
from schedsweep.plan.grid import make_plan  # noqa: E402
from schedsweep.sweep.api import Sweep  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("overrides", nargs="*", default=["+study=demo"])
    parser.add_argument("--name", default=None)
    parser.add_argument("--results", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plan = make_plan(args.overrides, name=args.name)
        sweep, _ = Sweep.create(plan, args.results or tmp, argv=["launch", *args.overrides])
        check = EtaCheck(sweep.path)
        print(f"{executors.cpus()} cores, load average {os.getloadavg()[0]:.1f}; {sweep.path}: {len(plan.runs)} runs "
              f"planned, {check.runs} to train ({check.estimate.total:,} steps)", flush=True)
        start = time.perf_counter()
        final = sweep.launch(progress=check)
        end = time.perf_counter()
    print(f"finished in {end - start:.1f} s: {dict(final or {})}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'finished':>9} {'at':>8} {'ETA shown':>10} {'time taken':>11} {'error':>7}")
    for finished, predicted, actual in check.errors(end):
        at = end - actual - start
        print(f"{100 * finished:8.0f}% {at:7.1f}s {predicted:9.1f}s {actual:10.1f}s {100 * (predicted - actual) / actual:+6.0f}%")


if __name__ == "__main__":
    main()
