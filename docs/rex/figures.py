"""The README's results of the rex study, drawn and printed by the code behind `schedsweep report`:
report.md (every table, Markdown) over the (task, optimizer) settings whose runs have all finished,
defaults.md (the README's evidence for the tuned defaults: each setting's winner at the 100% budget,
constant's result, and which schedules' best LR lies at an edge of the 0.3x-3x grid), one
LR-sensitivity figure per task at the 100% budget, and the average-rank figure.

    .venv/bin/python docs/rex/figures.py results/<rex sweep> docs/rex

Only the runs of `+study=rex` as conf/ plans it now count (the folder may hold runs of earlier grids).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from schedsweep.results import collect, plots, render, report
from schedsweep.sweep import store
from schedsweep.plan.grid import make_plan


def draw(sweep: Path, summary: pd.DataFrame, runs: pd.DataFrame, wanted: str) -> bytes:
    rep = report.build(runs)
    best = report.best_runs(runs, plots.shown_cells(rep))
    rows = collect.read_rows(sweep, summary, list(best["id"]), plots.CURVE_COLUMNS)
    return plots.draw(rep, best, rows).png[wanted]


def defaults(runs: pd.DataFrame, ranked: pd.DataFrame) -> str:
    """At the 100% budget, per (task, optimizer): the winner at its best LR (as a multiple of the setting's
    reference, the middle of its three LRs), constant's mean, and the schedules whose best LR is 0.3x or 3x."""
    full = ranked[ranked["budget"].astype(float) == 1.0]
    lines = ["| setting | best schedule (its LR) | constant | best LR at a grid edge |", "|---|---|---|---|"]
    for (task, optimizer), cells in full.groupby(["task", "optimizer"], sort=True):
        lrs = sorted(set(runs.loc[(runs["task"] == task) & (runs["optimizer"] == optimizer), "lr"]))
        mult = (cells["best_lr"] / lrs[len(lrs) // 2]).round(1)
        winner = cells.loc[cells["rank"].idxmin()]
        constant = cells.loc[cells["schedule"] == "constant", "mean"].iloc[0]
        edges = [f"{', '.join(cells.loc[mult == m, 'schedule'])} ({m:g}x)" for m in (0.3, 3.0) if (mult == m).any()]
        lines.append(f"| {task} {optimizer} | {winner['schedule']} {winner['mean']:.4g} ({mult[winner.name]:g}x) | "
                     f"{constant:.4g} | {'; '.join(edges) or 'none'} |")
    return "\n".join(lines) + "\n"


def main(sweep: Path, out: Path) -> None:
    runs = report.load_runs(sweep)
    # The sweep folder keeps every run it ever had (a reference LR changed since adds a second LR grid):
    # the study's tables are over the runs of the study as configured now.
    runs = runs[runs["id"].isin({run.id for run in make_plan(["+study=rex"]).runs})]
    setting = runs["task"] + " " + runs["optimizer"]
    finished = runs["status"].isin(store.TERMINAL).groupby(setting).transform("all")
    done, left = sorted(set(setting[finished])), sorted(set(setting[~finished]))
    runs = runs[finished]
    tasks = list(runs["task"].unique())
    header = (f"Settings with every run finished: {', '.join(done)} ({len(runs)} runs); "
              f"unfinished: {', '.join(left) or 'none'}.\n\n")
    rep = report.build(runs)
    (out / "report.md").write_text(header + render.report_text(rep, "md"), encoding="utf-8")
    (out / "defaults.md").write_text(defaults(runs, rep.ranked), encoding="utf-8")
    summary = collect.collect(sweep).summary
    for task in tasks:
        full = runs[(runs["task"] == task) & (runs["budget"].astype(float) == 1.0)]
        (out / f"sensitivity_{task}.png").write_bytes(draw(sweep, summary, full, "sensitivity"))
    (out / "avg_rank.png").write_bytes(draw(sweep, summary, runs, "avg_rank"))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
