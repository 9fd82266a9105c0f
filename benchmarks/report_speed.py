"""How fast is the report on a big sweep? collect + report vs reading every part with pandas.

Generates a synthetic finished sweep with real files: plan.jsonl, sweep.yaml, runs/<id>/run.json,
status.json and metrics/part-NNNNN.parquet (schedsweep.train.metrics.SCHEMA, 1,000 rows per part as the
trainer flushes them). Default: 10,000 runs = 8 schedules x 5 budgets (10%..100% of 1,923 steps) x
2 optimizers x 5 peak LRs x 5 seeds x 5 widths, 1,000 steps per run on average: 10M rows.

Then times: a full collect; a collect with nothing changed; after 50 runs changed; the report
(collect check + every table, as Markdown) in this process and as the real CLI, also with figures
and the HTML page; and the naive way
(pandas.read_parquet of every part, concat, groupby run for the final rows).

Run: .venv/bin/python benchmarks/report_speed.py [--runs N] [--dir PATH] [--skip-naive]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from schedsweep import files
from schedsweep.results import collect, render
from schedsweep.train import metrics
from schedsweep.sweep import run_folder, store
from schedsweep.results import report as reporting

SCHEDULES = ["constant", "linear", "cosine", "step", "exponential", "onecycle", "rex", "wsd"]
BUDGETS = [0.1, 0.25, 0.5, 0.75, 1.0]
OPTIMIZERS = ["sgd", "adamw"]
LRS = [0.01, 0.03, 0.1, 0.3, 1.0]
SEEDS = range(5)
WIDTHS = [32, 64, 128, 256, 512]
FULL_STEPS = 1923  # mean of the budgets' steps ~ 1,000
PART_ROWS = 1000
EVAL_EVERY = 50


def generate(sweep: Path, n_runs: int) -> int:
    """Write the sweep; returns the number of metric rows."""
    rng = np.random.default_rng(0)
    grid = list(itertools.product(WIDTHS, OPTIMIZERS, BUDGETS, SCHEDULES, LRS, SEEDS))[:n_runs]
    records, rows = [], 0
    runs = sweep / store.RUNS
    for width, optimizer, budget, schedule, lr, seed in grid:
        steps = round(budget * FULL_STEPS)
        axes = {"task.hidden": width, "optimizer": optimizer, "budget": budget, "schedule": schedule,
                "optimizer.lr": lr, "seed": seed}
        spec = {"task": {"hidden": width}, "optimizer": optimizer, "schedule": schedule, "steps": steps, "lr": lr, "seed": seed}
        run_id = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
        labels = {"task": "classifier", "optimizer": optimizer, "schedule": schedule, "budget": budget,
                  "steps": steps, "lr": lr, "seed": seed, "axes": axes}
        record = {"id": run_id, "labels": labels, "spec": spec, "log": {"eval_every": EVAL_EVERY}}
        records.append(record)
        path = runs / run_id
        (path / run_folder.METRICS).mkdir(parents=True, exist_ok=True)
        files.write_json(path / run_folder.RECORD, record)
        t = np.arange(steps)
        # A loss that falls with the budget, depends on schedule and LR, and is noisy per step and seed.
        floor = 1.0 + 0.3 / (1 + budget * 4) + 0.02 * SCHEDULES.index(schedule) / 8 + 0.05 * abs(np.log10(lr) + 1)
        loss = floor + 1.3 * np.exp(-t / (steps / 5)) + rng.normal(0, 0.05, steps)
        eval_loss = np.where((t + 1) % EVAL_EVERY == 0, loss + 0.02, np.nan)
        eval_loss[-1] = loss[-1] + 0.02
        table = pa.table({
            "step": t, "lr": lr * (1 - t / steps), "loss": loss, "grad_norm": rng.uniform(0.1, 2, steps),
            "grad_norm_l1": rng.uniform(10, 50, steps), "eval_loss": pa.array(eval_loss, from_pandas=True),
            "samples_seen": (t + 1) * 64, "wall_s": t * 0.005, "samples_per_s": np.full(steps, 12800.0),
        }, schema=metrics.SCHEMA)
        for part, start in enumerate(range(0, steps, PART_ROWS)):
            pq.write_table(table.slice(start, PART_ROWS), path / run_folder.METRICS / f"part-{part:05d}.parquet")
        finite = eval_loss[~np.isnan(eval_loss)]
        store.write_status(path, store.RunStatus("done", steps_done=steps, final_loss=float(loss[-1]),
                                                 final_eval_loss=float(finite[-1]), best_eval_loss=float(finite.min()),
                                                 wall_s=steps * 0.005))
        rows += steps
    store.write_plan(sweep, records)
    files.write_text(sweep / store.SWEEP_CONFIG, "name: synthetic\nexecutor:\n  kind: local\n")
    return rows


def timed(label: str, fn, results: dict[str, float]):
    start = time.perf_counter()
    value = fn()
    results[label] = time.perf_counter() - start
    print(f"  {label:<72} {results[label]:8.2f} s", flush=True)
    return value


def report_in_process(sweep: Path) -> str:
    result = collect.collect(sweep)
    rep = reporting.build(collect.runs_frame(result.summary))
    return render.report_text(rep, "md")


def naive(sweep: Path) -> pd.DataFrame:
    """Every part into pandas, then the final row of every run: what a notebook would do."""
    frames = []
    for folder in sorted((sweep / store.RUNS).iterdir()):
        for part in sorted((folder / run_folder.METRICS).glob("part-*.parquet")):
            frames.append(pd.read_parquet(part).assign(run_id=folder.name))
    rows = pd.concat(frames, ignore_index=True)
    evals = rows.dropna(subset=["eval_loss"]).sort_values(["run_id", "step"])
    return evals.groupby("run_id").agg(final_eval_loss=("eval_loss", "last"), best_eval_loss=("eval_loss", "min"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=None, help="keep (or reuse) the synthetic sweep here")
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="schedsweep-bench-"))
    sweep = root / "synthetic"
    results: dict[str, float] = {}
    try:
        if not (sweep / store.PLAN).is_file():
            print(f"generating {args.runs} runs under {sweep} ...", flush=True)
            rows = timed("generate (not part of the comparison)", lambda: generate(sweep, args.runs), results)
        else:
            shutil.rmtree(sweep / collect.COLLECTED, ignore_errors=True)
            rows = None
        print(f"cpu cores: {os.cpu_count()}", flush=True)
        summary = timed("collect, first time (all runs)", lambda: collect.collect(sweep).summary, results)
        rows = int(summary["n_rows"].sum())
        timed("collect again, nothing changed", lambda: collect.collect(sweep), results)
        ids = list(summary["run_id"])
        for label, changed in (("adjacent in the plan, as a queue finishes them", ids[len(ids) // 2:][:50]),
                               ("scattered over the sweep (worst case)", ids[::max(1, len(ids) // 50)][:50])):
            for run_id in changed:
                os.utime(store.run_dir(sweep, run_id) / run_folder.STATUS)
            timed(f"collect after 50 runs changed, {label}", lambda: collect.collect(sweep), results)
        text = timed("report in process (collect check + tables, md)", lambda: report_in_process(sweep), results)
        cli = [sys.executable, "-m", "schedsweep", "report", str(sweep), "--format", "md"]
        timed("report via the CLI (python start + imports)", lambda: subprocess.run(cli, capture_output=True, check=True), results)
        page = [*cli, "--plots", str(root / "figures"), "--html", str(root / "report.html")]
        timed("report via the CLI with --plots and --html (6 figures)", lambda: subprocess.run(page, capture_output=True, check=True),
              results)
        if not args.skip_naive:
            final = timed("naive: pandas read every part + groupby", lambda: naive(sweep), results)
            ours = summary.set_index("run_id")["final_eval_loss"]
            assert np.allclose(final["final_eval_loss"].reindex(ours.index), ours), "naive and collect disagree"
        size = sum(p.stat().st_size for p in (sweep / collect.COLLECTED).rglob("*.parquet"))
        print(f"\n{len(summary)} runs, {rows:,} metric rows; collected/ = {size / 2**20:.0f} MiB; report text {len(text):,} chars")
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
