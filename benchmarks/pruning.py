"""Would successive halving over the LR axis (`prune_lr=ETA`) have found what the full sweep found?

Replays the pruning rules of schedsweep.results.pruning on a finished full sweep: per (setting, schedule),
every LR at the smallest budget, then at each larger budget only the LRs the rule keeps from the budget
below. The pruned sweep is ranked as `schedsweep report` ranks (the sweep's own metric), and compared per
problem (setting, budget) with the full sweep:

* winner: the pruned sweep's winner is the full sweep's winner, or in its best group (not significantly
  worse, schedsweep.results.significance);
* best LR: the full winner's schedule has its best LR within one grid step (of that cell's full LR grid) of
  the full sweep's; also over every cell;
* regret: how much worse the full winner's schedule is at the pruned sweep's best LR than at its own
  (100 (mean - best) / |best|, the full sweep's means at that budget): a miss in a flat valley costs ~0;
* steps: the steps of the runs the pruned sweep trains / the full sweep's (without prefix sharing).

Targets (issue 21): at most 40% of the steps, winner right in >= 95% of problems, best LR within one step
in >= 90%.

The rules (schedsweep.results.pruning.RULES): neighbours, top, pair, halve rank each LR on its mean at the rung it
ran; extrap, extrap-pair, extrap-halve keep every LR for the two smallest budgets, then rank on its metric
extrapolated to the next budget (a power law in the steps through its last two rungs).

Run: .venv/bin/python benchmarks/pruning.py results/SWEEP --eta 3 [--rule neighbours|...|extrap|all] [--problems]
     (--problems: the per-problem table: winner, pruned winner, same winner, LR ok, regret, steps)
     .venv/bin/python benchmarks/pruning.py results/FULL --pruned results/PRUNED   (online: what prune_lr trained)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from schedsweep.plan.ranking import RankBy
from schedsweep.results import collect, pruning
from schedsweep.results import report as reporting
from schedsweep.sweep import store


def load(sweep: Path) -> tuple[pd.DataFrame, str]:
    runs = reporting.collected_runs(sweep, collect.collect(sweep).summary)
    rank_by = RankBy.parse(store.read_rank_by(sweep))
    if rank_by.metric_by_task:
        runs, _ = reporting.task_metric(runs, rank_by.metric, rank_by.metric_by_task)
        return runs, reporting.TASK_METRIC
    return runs, rank_by.metric


def compare(runs: pd.DataFrame, metric: str, eta: int, rule: str | None, online: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per problem: winner_ok, lr_ok (the full winner's cell), cells_lr_ok / cells, steps, full_steps.
    `online`: the runs of a sweep launched with prune_lr (its own results), instead of the rule's replay (`rule`
    is then unused)."""
    full = reporting.rank(runs, metric)
    setting = reporting.setting_columns(full)
    sens = reporting.lr_sensitivity(runs, metric)
    sens["group"] = _key(sens, [*setting, "schedule"])
    if online is None:
        trained = pruning.replay(sens, eta, rule)
        mask = pd.Series([k in trained for k in zip(_key(runs, [*setting, "schedule"]), runs["steps"],
                                                    runs["lr"].astype(float))], index=runs.index)
        pruned = reporting.rank(runs[mask], metric)
    else:  # what the pruned launch really trained, ranked on its own results
        ran = online[online["status"].isin(["done", "diverged"])]
        mask = runs["id"].isin(set(ran["id"]))
        pruned = reporting.rank(ran, metric)
    grids = {k: sorted(set(part["lr"].astype(float))) for k, part in runs.groupby(_key(runs, [*setting, "budget", "schedule"]))}
    fp = full.assign(_cell=_key(full, [*setting, "budget", "schedule"]), _problem=_key(full, [*setting, "budget"]))
    pp = pruned.assign(_cell=_key(pruned, [*setting, "budget", "schedule"]), _problem=_key(pruned, [*setting, "budget"]))
    best_lr = dict(zip(pp["_cell"], pp["best_lr"]))
    mean_at = {(c, float(lr)): m for c, lr, m in zip(_key(sens, [*setting, "budget", "schedule"]), sens["lr"], sens["mean"])}
    steps = runs.assign(_p=_key(runs, [*setting, "budget"]), _kept=mask)
    rows = []
    for problem, part in fp.groupby("_problem", sort=False):
        group = set(part.loc[part["best_group"].astype(bool), "schedule"])
        winners = part[(part["rank"] == 1) & np.isfinite(part["mean"])]
        mine = pp[pp["_problem"] == problem]
        mine_win = set(mine.loc[(mine["rank"] == 1) & np.isfinite(mine["mean"]), "schedule"])
        cells_ok = [_near(grids[c], lr, best_lr.get(c)) for c, lr in zip(part["_cell"], part["best_lr"]) if np.isfinite(lr)]
        win_cell = winners.iloc[0] if len(winners) else None
        here = steps[steps["_p"] == problem]
        rows.append({"problem": problem, "winner": ", ".join(winners["schedule"].astype(str)),
                     "pruned_winner": ", ".join(sorted(mine_win)), "winner_ok": bool(mine_win) and mine_win <= group,
                     "same_winner": mine_win == set(winners["schedule"].astype(str)),
                     "lr_ok": win_cell is not None and _near(grids[win_cell["_cell"]], win_cell["best_lr"], best_lr.get(win_cell["_cell"])),
                     "cells_lr_ok": sum(cells_ok), "cells": len(cells_ok),
                     "regret_pct": _regret(win_cell, best_lr, mean_at),
                     "steps": int(here.loc[here["_kept"], "steps"].sum()), "full_steps": int(here["steps"].sum())})
    return pd.DataFrame(rows)


def _regret(cell: Any, best_lr: dict[str, float], mean_at: dict[tuple[str, float], float]) -> float:
    """100 (mean at the pruned sweep's best LR - the full sweep's best mean) / |best|, of the full winner's schedule."""
    if cell is None or best_lr.get(cell["_cell"]) is None or not np.isfinite(best_lr[cell["_cell"]]):
        return float("nan")
    return 100 * (mean_at[(cell["_cell"], float(best_lr[cell["_cell"]]))] - cell["mean"]) / abs(cell["mean"])


def _near(grid: list[float], full: float, pruned: Any) -> bool:
    if pruned is None or not np.isfinite(pruned):
        return False
    return abs(grid.index(float(full)) - grid.index(float(pruned))) <= 1


def _key(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return [" ".join(map(str, k)) for k in zip(*(frame[c] for c in columns))]


def summary(table: pd.DataFrame) -> str:
    n = len(table)
    return (f"{n} problems: winner in the full best group {100 * table['winner_ok'].mean():.0f}% (the same "
            f"winner {100 * table['same_winner'].mean():.0f}%), best LR within one step "
            f"{100 * table['lr_ok'].mean():.0f}% (all cells: {100 * table['cells_lr_ok'].sum() / max(1, table['cells'].sum()):.0f}%), "
            f"steps {100 * table['steps'].sum() / table['full_steps'].sum():.0f}% of the full sweep's; the winner's "
            f"metric at the pruned best LR worse by {table['regret_pct'].median():.2f}% (median), "
            f"{table['regret_pct'].max():.2f}% (max)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--rule", choices=[*pruning.RULES, "all"], default="all")
    parser.add_argument("--problems", action="store_true", help="one line per problem")
    parser.add_argument("--pruned", type=Path, help="a sweep launched with prune_lr=ETA on the same grid: compare what it "
                        "really trained (online) with the full sweep, instead of replaying")
    args = parser.parse_args()
    runs, metric = load(args.sweep)
    if args.pruned is not None:
        online = load(args.pruned)[0]  # the full sweep's runs of the same grid points (ids), in its columns
        runs = runs.loc[runs["id"].isin(set(online["id"])), [c for c in runs.columns if c in online.columns]]
        table = compare(runs, metric, args.eta, None, online)
        print(f"online {args.pruned.name} against {args.sweep.name}: {summary(table)}")
        if args.problems:
            print(table.to_string(index=False))
        return
    for rule in pruning.RULES if args.rule == "all" else (args.rule,):
        table = compare(runs, metric, args.eta, rule)
        print(f"rule {rule}, eta {args.eta}: {summary(table)}")
        if args.problems:
            print(table.to_string(index=False))


if __name__ == "__main__":
    main()
