"""REX's per-setting table: one row per schedule, one column group per budget, and the average rank."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from schedsweep.results.compare import setting_of

PIVOT_FIELDS = ("mean", "rank", "mark")
AVG_RANK = ("avg_rank", "")


def pivot(ranked: pd.DataFrame) -> pd.DataFrame:
    """REX's table: per setting, one row per schedule, one column group per budget, and avg_rank.

    Index: (*setting columns, schedule). Columns: a MultiIndex (budget, field) with field in
    mean | rank | mark for every budget (ordered by steps), then ("avg_rank", ""). avg_rank is the
    mean of a schedule's ranks over its setting's budgets; a schedule the plan never ran at one of
    them counts there as rank = number of schedules in the setting (mark "absent"), so like missing
    runs it counts against the schedule. Cells of budgets a setting does not have are NaN. Rows are
    sorted by setting (plan order), avg_rank, schedule.
    """
    setting = setting_of(ranked)
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
    table = pd.DataFrame(
        [values for _, values in rows],
        index=pd.MultiIndex.from_arrays(index_arrays, names=names),
        columns=columns,
    )
    table.attrs = dict(ranked.attrs)
    return table
