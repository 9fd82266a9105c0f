"""The README's results of the rex study, drawn and printed by the code behind `schedsweep report`:
report.md (every table, Markdown) over the (task, optimizer) settings whose runs have all finished,
one LR-sensitivity figure per task at the 100% budget, and the average-rank figure.

    .venv/bin/python docs/rex/figures.py results/<rex sweep> docs/rex
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from schedsweep import collect, plots, render, report, store


def draw(sweep: Path, summary: pd.DataFrame, runs: pd.DataFrame, wanted: str) -> bytes:
    rep = report.build(runs)
    best = report.best_runs(runs, plots.shown_cells(rep))
    rows = collect.read_rows(sweep, summary, list(best["id"]), plots.CURVE_COLUMNS)
    return plots.draw(rep, best, rows).png[wanted]


def main(sweep: Path, out: Path) -> None:
    runs = report.load_runs(sweep)
    setting = runs["task"] + " " + runs["optimizer"]
    finished = runs["status"].isin(store.TERMINAL).groupby(setting).transform("all")
    done, left = sorted(set(setting[finished])), sorted(set(setting[~finished]))
    runs = runs[finished]
    tasks = list(runs["task"].unique())
    header = (f"Settings with every run finished: {', '.join(done)} ({len(runs)} runs); "
              f"unfinished: {', '.join(left) or 'none'}.\n\n")
    (out / "report.md").write_text(header + render.report_text(report.build(runs), "md"), encoding="utf-8")
    summary = collect.collect(sweep).summary
    for task in tasks:
        full = runs[(runs["task"] == task) & (runs["budget"].astype(float) == 1.0)]
        (out / f"sensitivity_{task}.png").write_bytes(draw(sweep, summary, full, "sensitivity"))
    (out / "avg_rank.png").write_bytes(draw(sweep, summary, runs, "avg_rank"))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
