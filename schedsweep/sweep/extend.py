"""`launch --extend-lr`: grow each cell's peak-LR grid where its best LR sits at an edge, round by round.

A *cell* is one (setting, budget, schedule) of the report's ranking (schedsweep.results.report.rank, by the
sweep's own metric: the study's per task, else final_eval_loss). After a round, a cell whose runs have
all settled (done or diverged; none failed, pending or running) is extended when

* its best LR is the highest of the >= 2 LRs it ran (`lr_edge` "high"): one grid point above it;
* its best LR is the lowest (`lr_edge` "low"): one grid point below it;
* every LR it ran diverged (mark "diverged"; diverged runs count as "too high"): one point below its lowest.

A diverged LR is in the cell's grid: a best LR just below a diverged one is inside, so the extension stops
there. The next point continues the grid's own pattern: above the top LR l[-1], l[-1] * l[-2] / l[-3]
(1e-3, 3e-3, 1e-2 goes on with 3e-2, then 1e-1, as REX's multiples of 3 would); with 2 LRs their ratio; with
one, x3 (REX tunes "in multiples of 3"). Below, the mirror image. Only the new LR's runs are planned: the
cell's runs at its edge LR (every seed) with the optimizer's lr (and its `rest:` lr) replaced, as the
planner would have made them (schedsweep.plan.point: an lr_mult grid is an lr grid in the spec), so several
optimizers each extend their own LR. Every round is logged in the sweep's extended.jsonl, which the
report turns into a note.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schedsweep import files
from schedsweep.plan.point import Run
from schedsweep.sweep import store
from schedsweep.sweep.status import PRUNED

LOG = "extended.jsonl"
DEFAULT_RATIO = 3.0  # REX: "in multiples of 3"


@dataclass(frozen=True)
class Edge:
    """One cell to extend and why."""

    cell: str  # "quadratic adamw 50% cosine": setting, budget, schedule
    edge: str  # "high", "low" or "diverged" (every LR diverged)
    best_lr: float  # the LR at the edge (the lowest LR when every one diverged)
    new_lr: float
    templates: tuple[str, ...]  # ids of the cell's runs at best_lr: the new runs copy them

    def line(self) -> str:
        why = {"high": "best at the top of its grid", "low": "best at the bottom of its grid",
               "diverged": "every LR diverged"}[self.edge]
        return f"{self.cell}: {why} ({self.best_lr:g}) -> lr {self.new_lr:g}"


def next_lr(lrs: list[float], upward: bool) -> float:
    """The grid point beyond the top (upward) or the bottom of `lrs`, continuing its pattern (module docstring)."""
    grid = sorted(set(lrs))
    if not upward:
        grid = [1 / x for x in reversed(grid)]
    if len(grid) >= 3:
        ratio = grid[-2] / grid[-3]
    elif len(grid) == 2:
        ratio = grid[-1] / grid[-2]
    else:
        ratio = DEFAULT_RATIO
    value = grid[-1] * ratio
    return float(f"{(value if upward else 1 / value):.6g}")


def edges(runs: Any, metric: str) -> list[Edge]:
    """The cells to extend now (module docstring), in ranking order, of a sweep's runs ranked by `metric`
    (Sweep.ranked_runs)."""
    from schedsweep.results import report as reporting
    from schedsweep.results.compare import budget_label

    runs = runs[runs["status"] != PRUNED]  # prune_lr: never trained, not a missing result
    ranked = reporting.rank(runs, metric)
    setting = reporting.setting_columns(ranked)
    keys = [*setting, "budget", "steps", "schedule"]
    by_cell = {k: part for k, part in runs.groupby([runs[c].map(repr) for c in keys], sort=False)}
    out = []
    for row in ranked.to_dict("records"):
        settled = row["n_failed"] == 0 and row["n_missing"] == 0
        edge = "diverged" if row["mark"] == "diverged" else row["lr_edge"]
        if not settled or edge not in ("high", "low", "diverged"):
            continue
        part = by_cell[tuple(repr(row[c]) for c in keys)]
        lrs = [float(x) for x in part["lr"]]
        at = min(lrs) if edge == "diverged" else float(row["best_lr"])
        templates = tuple(dict.fromkeys(part.loc[np.isclose(part["lr"].astype(float), at, rtol=1e-12), "id"]))
        label = " ".join(str(row[c]) for c in setting)
        out.append(Edge(f"{label} {budget_label(row['budget'])} {row['schedule']}", edge, at,
                        next_lr(lrs, upward=edge == "high"), templates))
    return out


def plan_runs(sweep_dir: Path, found: list[Edge]) -> list[Run]:
    """The new runs of `found`: each template run at the new LR (runs the sweep has already are left out)."""
    from schedsweep import tasks
    from schedsweep.plan.identity import Identifier
    from schedsweep.train import optimizers

    records = {r["id"]: r for r in store.read_plan(sweep_dir)}
    identifier = Identifier(tasks.identity_params, optimizers.identity_params)
    runs: dict[str, Run] = {}
    for edge in found:
        for run_id in edge.templates:
            run = moved(Run.from_record(records[run_id]), edge.new_lr, identifier)
            if run.id not in records:
                runs.setdefault(run.id, run)
    return list(runs.values())


def moved(run: Run, lr: float, identifier: Any) -> Run:
    """`run` at peak LR `lr`: its optimizer's lr (and a `rest:` optimizer's, by the same factor) and lr labels."""
    old = float(run.spec["optimizer"]["lr"])
    factor = lr / old

    def scaled(section: dict[str, Any]) -> dict[str, Any]:
        new = {**section, "lr": float(f"{float(section['lr']) * factor:.6g}")}
        if isinstance(section.get("rest"), dict) and "lr" in section["rest"]:
            new["rest"] = scaled(section["rest"])
        return new

    spec = {**run.spec, "optimizer": scaled(run.spec["optimizer"])}
    axes = dict(run.labels.get("axes") or {})
    for key in ("optimizer.lr", "+optimizer.lr"):
        if key in axes:
            axes[key] = spec["optimizer"]["lr"]
    if "lr_mult" in axes:
        axes["lr_mult"] = float(f"{float(axes['lr_mult']) * factor:.6g}")
    labels = {**run.labels, "lr": spec["optimizer"]["lr"], "axes": axes}
    digest, identity = identifier.id_and_identity(spec)
    return dataclasses.replace(run, id=digest, spec=spec, labels=labels, identity=identity, aliases=())


def rounds_done(sweep_dir: Path) -> int:
    return len(files.read_jsonl(sweep_dir / LOG, missing_ok=True))


def log_round(sweep_dir: Path, found: list[Edge], added: list[Run]) -> int:
    """Append this round to extended.jsonl; its number (1 = the first round the sweep ever had)."""
    number = rounds_done(sweep_dir) + 1
    files.append_jsonl(sweep_dir / LOG, {"round": number, "time": store.now(), "runs": [r.id for r in added],
                                         "cells": [{"cell": e.cell, "edge": e.edge, "best_lr": e.best_lr,
                                                    "new_lr": e.new_lr} for e in found]})
    return number


def notes(sweep_dir: Path) -> list[str]:
    """One report note per extension round: which cells got which LR, and why."""
    out = []
    for entry in files.read_jsonl(sweep_dir / LOG, missing_ok=True):
        cells = [Edge(c["cell"], c["edge"], c["best_lr"], c["new_lr"], ()).line() for c in entry["cells"]]
        out.append(f"--extend-lr round {entry['round']} added {len(entry['runs'])} run(s): " + "; ".join(cells) + ".")
    return out

