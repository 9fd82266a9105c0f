"""The README's results of the rex study, drawn and printed by the code behind `schedsweep report`:
report.md (every table, Markdown) over the tasks whose runs have all finished, one LR-sensitivity
figure per such task at the 100% budget, and the average-rank figure.

    .venv/bin/python docs/rex/figures.py results/<rex sweep> docs/rex
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from schedsweep import collect, plots, render, report, store


def draw(sweep: Path, runs: pd.DataFrame, wanted: str) -> bytes:
    rep = report.build(runs)
    best = report.best_runs(runs, plots.shown_cells(rep))
    rows = collect.read_rows(sweep, collect.collect(sweep).summary, list(best["id"]), plots.CURVE_COLUMNS)
    return plots.draw(rep, best, rows).png[wanted]


def main(sweep: Path, out: Path) -> None:
    runs = report.load_runs(sweep)
    finished = runs.groupby("task")["status"].agg(lambda s: s.isin(store.TERMINAL).all())
    tasks = [t for t in runs["task"].unique() if finished[t]]
    runs = runs[runs["task"].isin(tasks)]
    left = ", ".join(t for t in finished.index if not finished[t]) or "none"
    header = f"Tasks with every run finished: {', '.join(tasks)} ({len(runs)} runs); unfinished: {left}.\n\n"
    (out / "report.md").write_text(header + render.report_text(report.build(runs), "md"), encoding="utf-8")
    for task in tasks:
        full = runs[(runs["task"] == task) & (runs["budget"].astype(float) == 1.0)]
        (out / f"sensitivity_{task}.png").write_bytes(draw(sweep, full, "sensitivity"))
    (out / "avg_rank.png").write_bytes(draw(sweep, runs, "avg_rank"))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
