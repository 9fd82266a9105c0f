"""Ranking schedules per budget: the numbers behind `schedsweep report`.

DataFrame in, DataFrame out; nothing here prints (schedsweep.render does). Only plan.jsonl and the
status.json files are read, never metrics, so a report over thousands of runs stays instant.

A run's *setting* is its task, optimizer and every swept key that is not compared (schedule, budget),
tuned (optimizer.lr) or aggregated (seed). Within one (setting, budget) each schedule gets its best
peak LR, its mean over seeds at that LR and a rank, as in REX (Chen et al., MLSys 2022); `pivot`
averages those ranks over budgets.

NaN is a status, not a number: a diverged run scores +inf (AlgoPerf scores a miss as infinite), so it
ranks after every finite result, and a schedule with no result at all is still listed, ranked last.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from schedsweep import store
from schedsweep.errors import ConfigError, ResultsError

METRICS = ("final_eval_loss", "final_loss", "best_eval_loss")
LABELS = ("task", "optimizer", "schedule", "budget", "steps", "lr", "seed")
REQUIRED_LABELS = ("task", "optimizer", "schedule", "budget", "steps")
STATUS_COLUMNS = ("status", "final_eval_loss", "final_loss", "best_eval_loss", "steps_done", "wall_s", "error")
# Swept keys that do not define a setting: compared (schedule, budget), tuned (optimizer.lr),
# aggregated (seed), or already a label column (task, optimizer).
NOT_SETTING = frozenset({"schedule", "budget", "optimizer", "task", "optimizer.lr", "seed"})
CELL_STATS = ("best_lr", "mean", "std", "n", "n_runs", "n_diverged", "n_failed", "n_missing", "mark")
RANK_COLUMNS = (*CELL_STATS, "rank", "gap", "gap_pct")
PIVOT_FIELDS = ("mean", "rank", "mark")
AVG_RANK = ("avg_rank", "")
# Marks: "" a full result; "partial" some seeds of the best LR unfinished; "diverged" no LR has a
# finite mean; "failed"/"missing" no finished run (failed wins: resubmission is needed, not patience).
# In the pivot only, "absent" is a schedule the plan never ran at a budget its setting has.
NO_RESULT = ("failed", "missing")
_RESERVED = frozenset({"id", *LABELS, *STATUS_COLUMNS, *RANK_COLUMNS})


def load_runs(sweep_dir: Path) -> pd.DataFrame:
    """One row per planned run, in plan order, joined with its status.json (absent = pending).

    Columns: id, task, optimizer, schedule, budget, steps, lr, seed, one column per extra swept key
    (named as the key, e.g. `task.d_model`), then status, final_eval_loss, final_loss,
    best_eval_loss, steps_done, wall_s, error. `budget` keeps the user's spelling (object dtype:
    0.25 is a fraction, 500 is steps); `steps` is the resolved step count that orders budgets.
    """
    plan_path = Path(sweep_dir) / store.PLAN
    records = store.read_plan(Path(sweep_dir))
    extras = _extra_keys(records)
    rows: list[dict[str, Any]] = []
    for lineno, record in enumerate(records, 1):
        labels = record.get("labels") or {}
        lacking = [k for k in ("id",) if k not in record] + [k for k in REQUIRED_LABELS if k not in labels]
        if lacking:
            raise ResultsError(
                f"'{plan_path}' line {lineno} lacks {', '.join(lacking)}: it was not written by "
                "'schedsweep launch'. Re-plan the sweep to report on it."
            )
        status = store.read_status(store.run_dir(Path(sweep_dir), record["id"]))
        axes = labels.get("axes") or {}
        rows.append(
            {
                "id": record["id"],
                **{k: labels.get(k) for k in LABELS},
                **{column: _hashable(axes.get(key)) for key, column in extras.items()},
                **{k: getattr(status, k) for k in STATUS_COLUMNS},
            }
        )
    columns = ["id", *LABELS, *extras.values(), *STATUS_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns)
    # Axis values stay as given (object dtype): pandas would read [0.25, 500] as floats, turning
    # 500 steps into 500.0, and [None, 64] as [NaN, 64.0].
    for column in ("budget", *extras.values()):
        frame[column] = pd.Series([r[column] for r in rows], dtype=object)
    losses = {k: float for k in ("final_eval_loss", "final_loss", "best_eval_loss", "wall_s", "lr")}
    return frame.astype({**losses, "steps": int, "steps_done": int})


def setting_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that name a setting: task, optimizer and every extra swept key."""
    return ["task", "optimizer", *[c for c in frame.columns if c not in _RESERVED and not c.startswith("_")]]


@dataclass(frozen=True)
class CellStats:
    """One schedule at one (setting, budget): its best peak LR and the seeds' summary there."""

    best_lr: float
    mean: float
    std: float
    n: int
    n_runs: int
    n_diverged: int
    n_failed: int
    n_missing: int
    mark: str


def rank(runs: pd.DataFrame, metric: str = "final_eval_loss") -> pd.DataFrame:
    """Rank schedules within each (setting, budget) by `metric`, one row per (setting, budget, schedule).

    A run's score is its metric when done, +inf when diverged, missing otherwise. Per peak LR the
    score is the mean over seeds (+inf if any seed diverged). best_lr is the lowest finite mean among
    LRs whose seeds all finished; failing that, among LRs with some finished seeds (mark "partial").
    rank: finite means ascending, ties share the lowest rank (method="min"); then schedules with no
    finite mean (mark "diverged") sharing the next rank; then those with no result ("failed" or
    "missing"), last. gap = mean - best finite mean of the budget; gap_pct = 100 * gap / |best|.

    Columns: setting columns, budget, steps, schedule, best_lr, mean, std (ddof=1, NaN when n == 1),
    n (finished seeds at best_lr), n_runs, n_diverged, n_failed, n_missing (pending, running, or done
    without this metric), mark, rank, gap, gap_pct. Sorted by setting (plan order), steps, rank,
    schedule. The metric is kept in `.attrs["metric"]`.
    """
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose one of: {', '.join(METRICS)}.")
    _require_measured(runs, metric)
    runs = runs.reset_index(drop=True)
    setting = setting_columns(runs)
    score = runs[metric].where(runs["status"] == "done").mask(runs["status"] == "diverged", np.inf)
    frame = runs.assign(_score=score, _sid=runs.groupby(setting, sort=False, dropna=False).ngroup())

    keys = ["_sid", *setting, "budget", "steps", "schedule"]
    groups = list(frame.groupby(keys, sort=False, dropna=False))
    # Key values are taken from each group's first row, not the groupby keys, to keep their dtypes.
    cells = frame.loc[[g.index[0] for _, g in groups], keys].reset_index(drop=True)
    stats = pd.DataFrame([asdict(_summarise(g)) for _, g in groups], columns=list(CELL_STATS))
    counts = ("n", "n_runs", "n_diverged", "n_failed", "n_missing")
    stats = stats.astype({"best_lr": float, "mean": float, "std": float, "mark": str, **dict.fromkeys(counts, int)})
    cells = pd.concat([cells, stats], axis=1)

    finite = np.isfinite(cells["mean"])
    diverged = cells["mark"] == "diverged"
    cells = cells.assign(_finite=cells["mean"].where(finite), _t0=finite, _t1=diverged)
    by_budget = cells.groupby(["_sid", "budget", "steps"], sort=False)
    n_finite = by_budget["_t0"].transform("sum")
    n_diverged = by_budget["_t1"].transform("sum")
    finite_rank = by_budget["_finite"].rank(method="min")
    cells["rank"] = np.select(
        [finite, diverged], [finite_rank, n_finite + 1], n_finite + n_diverged + 1
    ).astype(int)
    best = by_budget["_finite"].transform("min")
    cells["gap"] = cells["mean"] - best
    cells["gap_pct"] = 100 * cells["gap"] / best.abs().where(best != 0)

    cells = cells.sort_values(["_sid", "steps", "budget", "rank", "schedule"], kind="stable")
    ranked = cells[[*setting, "budget", "steps", "schedule", *RANK_COLUMNS]].reset_index(drop=True)
    ranked.attrs["metric"] = metric
    return ranked


def winners(ranked: pd.DataFrame) -> pd.DataFrame:
    """The rank-1 schedule(s) of each (setting, budget), every one of a tie; none where nothing finished."""
    return ranked[(ranked["rank"] == 1) & np.isfinite(ranked["mean"])].reset_index(drop=True)


def pivot(ranked: pd.DataFrame) -> pd.DataFrame:
    """REX's table: per setting, one row per schedule, one column group per budget, and avg_rank.

    Index: (*setting columns, schedule). Columns: a MultiIndex (budget, field) with field in
    mean | rank | mark for every budget (ordered by steps), then ("avg_rank", ""). avg_rank is the
    mean of a schedule's ranks over its setting's budgets; a schedule the plan never ran at one of
    them counts there as rank = number of schedules in the setting (mark "absent"), so like missing
    runs it counts against the schedule. Cells of budgets a setting does not have are NaN. Rows are
    sorted by setting (plan order), avg_rank, schedule.
    """
    setting = setting_columns(ranked)
    sid = ranked.groupby(setting, sort=False, dropna=False).ngroup()
    # Budgets by steps (the fewest where tasks differ); in plain Python, as groupby would turn 500 into 500.0.
    steps_of: dict[Any, int] = {}
    for b, steps in zip(ranked["budget"], ranked["steps"]):
        steps_of[b] = min(int(steps), steps_of.get(b, int(steps)))
    budgets = sorted(steps_of, key=steps_of.__getitem__)
    rows: list[tuple[tuple[Any, ...], list[Any]]] = []
    order: list[tuple[int, float, str]] = []
    for s, part in ranked.groupby(sid, sort=False):
        worst = part["schedule"].nunique()
        present = set(part["budget"])
        for schedule, g in part.groupby("schedule", sort=False):
            have = {b: (m, r, k) for b, m, r, k in zip(g["budget"], g["mean"], g["rank"], g["mark"])}
            values: list[Any] = []
            ranks: list[float] = []
            for b in budgets:
                if b in have:
                    cell = have[b]
                elif b in present:
                    cell = (math.nan, worst, "absent")
                else:
                    cell = (math.nan, math.nan, None)
                values.extend(cell)
                if not pd.isna(cell[1]):
                    ranks.append(float(cell[1]))
            avg = sum(ranks) / len(ranks)
            rows.append(((*part[setting].iloc[0], schedule), [*values, avg]))
            order.append((int(s), avg, str(schedule)))
    rows = [row for _, row in sorted(zip(order, rows), key=lambda pair: pair[0])]
    names = [*setting, "schedule"]
    index_arrays = [list(a) for a in zip(*(key for key, _ in rows))] or [[] for _ in names]
    columns = pd.MultiIndex.from_tuples(
        [(b, f) for b in budgets for f in PIVOT_FIELDS] + [AVG_RANK], names=["budget", "field"]
    )
    return pd.DataFrame(
        [values for _, values in rows],
        index=pd.MultiIndex.from_arrays(index_arrays, names=names),
        columns=columns,
    )


def _summarise(cell: pd.DataFrame) -> CellStats:
    """Pick the best peak LR of one schedule at one (setting, budget) and summarise its seeds there."""
    status = cell["status"]
    n_failed = int((status == "failed").sum())
    counts = {
        "n_runs": len(cell),
        "n_diverged": int((status == "diverged").sum()),
        "n_failed": n_failed,
        "n_missing": int(cell["_score"].isna().sum()) - n_failed,
    }
    options: list[tuple[float, bool, float, np.ndarray]] = []  # (mean, complete, lr, scores)
    for lr, g in cell.groupby("lr", sort=True, dropna=False):
        scores = g["_score"].dropna().to_numpy(dtype=float)
        if len(scores):
            options.append((float(scores.mean()), len(scores) == len(g), float(lr), scores))
    finite = [o for o in options if math.isfinite(o[0])]
    complete = [o for o in finite if o[1]]
    if not finite:
        mark = "diverged" if options else ("failed" if n_failed else "missing")
        return CellStats(math.nan, math.inf if options else math.nan, math.nan, 0, **counts, mark=mark)
    # min() keeps the first of equal means, and LRs are in ascending order: a tie goes to the lower LR.
    mean, _, lr, scores = min(complete or finite, key=lambda o: o[0])
    std = float(scores.std(ddof=1)) if len(scores) > 1 else math.nan
    return CellStats(lr, mean, std, len(scores), **counts, mark="" if complete else "partial")


def _require_measured(runs: pd.DataFrame, metric: str) -> None:
    """Refuse to rank by a metric that no finished run recorded (e.g. eval loss of a task without eval)."""
    done = runs[runs["status"] == "done"]
    if len(done) and done[metric].isna().all():
        measured = [m for m in METRICS if done[m].notna().any()]
        hint = f"rank by one of: {', '.join(measured)}" if measured else "no loss was recorded at all"
        raise ConfigError(f"no finished run recorded {metric}; {hint}.")


def _extra_keys(records: list[dict[str, Any]]) -> dict[str, str]:
    """Swept keys that define settings, in first-seen order, mapped to their column names."""
    keys: dict[str, str] = {}
    for record in records:
        for key in (record.get("labels") or {}).get("axes") or {}:
            if key not in NOT_SETTING and key not in keys:
                # A key that would shadow a report column keeps its own name under an "axes." prefix.
                keys[key] = f"axes.{key}" if key in _RESERVED else key
    return keys


def _hashable(value: Any) -> Any:
    """Axis values group rows, so lists and dicts (e.g. betas) become their canonical JSON text."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value
