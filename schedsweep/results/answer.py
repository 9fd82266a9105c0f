"""The answer in words: what `schedsweep report` says before any table.

Per setting (task, optimizer and any other key that tells runs apart) and budget: the winner, the schedules
statistically tied with it (the best group of schedsweep.results.significance: not significantly worse at
5%, one-sided), and what the data cannot tell. With one seed there is no spread to test against, so the
sentence says so instead of implying a difference. With several seeds and a runner-up inside the best
group, it says how many seeds would separate the two at the observed spread: n = ((z_0.95 + z_0.80) s / d)^2,
s the spread of the difference between the two (sqrt of the sum of their seed variances, as if unpaired:
an upper bound when seeds pair them), d the observed gap; a normal approximation, for 80% power.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from schedsweep.results.report import Report, setting_columns

Z_ALPHA, Z_POWER = 1.6449, 0.8416  # one-sided 5%, 80% power
MAX_SEEDS = 1000  # beyond this a difference is too small to matter: say so rather than print a huge number


def seeds_to_separate(gap: float, std_a: float, std_b: float) -> int | None:
    """Seeds per schedule for a one-sided 5% test to tell two means `gap` apart with 80% power (normal
    approximation); None when the spread or the gap does not allow an estimate."""
    spread = math.sqrt(std_a**2 + std_b**2)
    if not (math.isfinite(spread) and spread > 0 and math.isfinite(gap) and gap > 0):
        return None
    return max(2, math.ceil(((Z_ALPHA + Z_POWER) * spread / gap) ** 2))


def sentences(rep: Report) -> list[str]:
    """One line per setting and budget, setting first: the winner, who is tied with it, what is unknown."""
    ranked = rep.ranked
    if ranked.empty:
        return []
    keys = setting_columns(ranked)
    lines = []
    for setting, frame in ranked.groupby(keys, sort=False, dropna=False):
        setting = setting if isinstance(setting, tuple) else (setting,)
        name = " · ".join(f"{v}" if k in ("task", "optimizer") else f"{k}={v}" for k, v in zip(keys, setting))
        for budget, problem in frame.groupby("budget", sort=False):
            lines.append(f"{name}, budget {_budget(budget)} ({int(problem['steps'].iloc[0])} steps): {_problem(problem, rep.maximize)}")
    return lines


def _problem(problem: pd.DataFrame, maximize: bool) -> str:
    finite = problem[problem["mean"].map(lambda v: isinstance(v, float) and math.isfinite(v))].sort_values("rank")
    if finite.empty:
        return "no schedule has a finite result."
    winners = finite[finite["rank"] == finite["rank"].min()]
    first = winners.iloc[0]
    names = " and ".join(_name(r) for _, r in winners.iterrows())
    text = f"{names} {'win' if len(winners) > 1 else 'wins'} ({_num(first['mean'])})"
    others = finite[finite["rank"] > first["rank"]]
    seeds = int(first["n"])
    if seeds < 2:
        if len(others):
            runner = others.iloc[0]
            text += (f"; {_name(runner)} is {runner['gap_pct']:.1f}% behind, but with one seed there is no spread to "
                     "test it against: run more seeds (e.g. 'seed=range(3)') to tell them apart")
        return text + "."
    tied = others[others["best_group"].astype(bool)]
    if tied.empty:
        return text + "; every other schedule is significantly worse (5%, one-sided)."
    listed = ", ".join(f"{_name(r)} (p {r['p_vs_best']:.2f})" for _, r in tied.iterrows())
    text += f"; statistically tied with it: {listed}"
    runner = tied.iloc[0]
    need = seeds_to_separate(float(runner["mean"] - first["mean"]) * (-1 if maximize else 1),
                             float(first["std"]), float(runner["std"]))
    if need is not None and need > seeds:
        text += (f"; about {need} seeds would separate {_name(first)} from {_name(runner)} at the observed spread"
                 if need <= MAX_SEEDS else f"; {_name(first)} and {_name(runner)} differ by less than their seeds vary")
    return text + "."


def _name(row: Any) -> str:
    same = row.get("same_as") if hasattr(row, "get") else None
    return f"{row['schedule']} (= {same})" if isinstance(same, str) and same else str(row["schedule"])


def _num(value: float) -> str:
    return f"{value:.4g}"


def _budget(budget: Any) -> str:
    try:
        b = float(budget)
    except (TypeError, ValueError):
        return str(budget)  # a budget in tokens or samples: its label ('1e9 tokens')
    return f"{b:.0%}" if b <= 1 else f"{int(b)} steps"
