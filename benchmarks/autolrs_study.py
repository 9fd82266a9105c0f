"""AutoLRS against the best fixed schedule at the same total steps, on the fast CPU tasks.

Per task (classifier: 300 steps, quadratic: 200 steps, AdamW at the tuned peak LR of conf/tuned/), 3 seeds:
constant, linear, cosine, wsd and rex at the full budget, and autolrs with tau = 40 updates, tau_max = 80
(the authors' 1000 / 8000 do not fit budgets this small; trials of 4 and 8 updates, 10 per stage) whose trials
are paid from the same budget. AutoLRS searches between 0.01x and 1x the tuned peak LR. Prints a Markdown
table (mean final eval loss +- std over seeds, steps, trial steps) and writes the LR each AutoLRS run used
(a figure) to docs/guide/autolrs_lr.png.

Run: .venv/bin/python benchmarks/autolrs_study.py [--out docs/guide/autolrs_lr.png]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from schedsweep.plan.grid import make_plan
from schedsweep.sweep import run_folder, store
from schedsweep.train import run as train
from schedsweep.train.distributed import Dist
from schedsweep.train.metrics import MetricsWriter, read_metrics

TASKS = ("classifier", "quadratic")
FIXED = ("constant", "linear", "cosine", "wsd", "rex")
AUTOLRS = ("schedule=autolrs", "schedule.tau=40", "schedule.tau_max=80")
SEEDS = (0, 1, 2)


def one(folder: Path, overrides: list[str]) -> tuple[store.RunStatus, list[dict[str, Any]]]:
    (run,) = make_plan(overrides).runs
    folder.mkdir(parents=True)
    writer = MetricsWriter(folder / run_folder.METRICS)
    status = train.train(run.record(), folder, Dist(), writer, None, train.StopFlag())
    writer.flush()
    return status, read_metrics(folder / run_folder.METRICS, ["step", "lr"]).to_pylist()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("docs/guide/autolrs_lr.png"))
    args = parser.parse_args()
    start = time.perf_counter()
    results: dict[tuple[str, str], list[store.RunStatus]] = {}
    curves: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in TASKS:
            for name in (*FIXED, "autolrs"):
                schedule = list(AUTOLRS) if name == "autolrs" else [f"schedule={name}"]
                for seed in SEEDS:
                    status, rows = one(Path(tmp) / f"{task}-{name}-{seed}",
                                       [f"task={task}", "optimizer=adamw", *schedule, "budget=1.0", f"seed={seed}"])
                    results.setdefault((task, name), []).append(status)
                    if name == "autolrs":
                        curves[(task, seed)] = rows
    print("| task | schedule | final eval loss (mean +- std, 3 seeds) | steps | of which trials |")
    print("|---|---|---|---|---|")
    for (task, name), statuses in results.items():
        losses = [s.final_eval_loss if s.final_eval_loss is not None else float("nan") for s in statuses]
        print(f"| {task} | {name} | {statistics.mean(losses):.4f} +- {statistics.stdev(losses):.4f} | "
              f"{statuses[0].steps_done} | {statuses[0].trial_steps} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TASKS), figsize=(5 * len(TASKS), 3.2))
    for ax, task in zip(axes, TASKS):
        for seed in SEEDS:
            rows = curves[(task, seed)]
            ax.step([r["step"] for r in rows], [r["lr"] for r in rows], where="post", label=f"seed {seed}")
        ax.set(title=f"AutoLRS on {task} (kept steps)", xlabel="kept step", ylabel="LR", yscale="log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"\nwrote {args.out}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
