"""Packed Slurm jobs against one run per job and against the local pool: the demo study's 48 runs
(`+study=demo`: 8 schedules x 3 budgets x 2 optimizers, the classifier, 1,000 full steps).

  slurm 1/job    executor.runs_per_job=1: one array task per run (each a fresh Python with torch)
  slurm K/job    executor.runs_per_job=K (12 and 48): K runs per array task, gpus_per_node at once
  local pool     executor=local: reused worker processes on this machine

Each figure is the user's wait: process start to exit of `schedsweep launch ... --wait` (queueing, job starts,
training and the launcher's polling included), and the jobs it submitted (jobs.jsonl). Needs the test cluster
(tests/slurm/cluster.sh start: 2 nodes on this host, fake GPUs as gres); the cluster's MaxArraySize (4) cuts
48 one-run jobs into 12 arrays.
Run: .venv/bin/python benchmarks/slurm_packing.py [--gpus 2] [--packs 12,48] [--skip 'slurm 1/job']
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from schedsweep.executors import slurm
from schedsweep.sweep import store

DEMO = ["+study=demo"]


def launch(name: str, overrides: list[str], results: Path) -> tuple[float, int, int]:
    """(seconds the user waits, jobs submitted, runs done)."""
    start = time.perf_counter()
    # --no-reuse: every case trains its 48 runs (the same run ids would otherwise be linked in from the case before).
    proc = subprocess.run([sys.executable, "-m", "schedsweep", "launch", *DEMO, *overrides, "--wait", "--no-reuse",
                           "--results", str(results), "--name", name], env=os.environ | {"COLUMNS": "200"}, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    sweep = results / name
    jobs = len({j["job"] for j in slurm._job_records(sweep)})
    done = sum(store.read_status(store.run_dir(sweep, r["id"])).status == "done" for r in store.read_plan(sweep))
    return wall, jobs, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=2, help="gpus_per_node of the packed jobs (runs at once per job)")
    parser.add_argument("--packs", default="12,48", help="runs_per_job values to measure")
    parser.add_argument("--parallel", type=int, default=2, help="max_parallel of the local pool")
    parser.add_argument("--skip", default="", help="cases to leave out, by label, comma-separated (e.g. 'slurm 1/job')")
    args = parser.parse_args()
    slurm_args = ["executor=slurm", "executor.cpus_per_task=1", "executor.time_min=10"]
    cases = [("slurm 1/job", [*slurm_args]),
             *[(f"slurm {k}/job", [*slurm_args, f"executor.runs_per_job={k}", f"executor.gpus_per_node={args.gpus}"])
               for k in map(int, args.packs.split(","))],
             ("local pool", ["executor=local", f"executor.max_parallel={args.parallel}"])]
    cases = [c for c in cases if c[0] not in args.skip.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (label, overrides) in enumerate(cases):
            wall, jobs, done = launch(f"case{k}", overrides, Path(tmp) / "results")
            rows.append((label, wall, jobs, done))
            print(f"{label}: {wall:.1f} s, {jobs} jobs, {done} runs done", flush=True)
    local = rows[-1][1]
    print("\n| how | launch to last run done | jobs submitted | vs local pool |")
    print("|---|---|---|---|")
    for label, wall, jobs, done in rows:
        print(f"| {label} | {wall:.0f} s | {jobs if label.startswith('slurm') else '-'} | {wall / local:.2f}x |")


if __name__ == "__main__":
    main()
