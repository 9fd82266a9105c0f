"""Paired contrasts across problems with bootstrap confidence intervals: is REX really better than linear?

A contrast "A - B" compares two schedules over every problem (setting, budget) where both have a
finite result at their best peak LRs. Per problem its value is the relative difference of their means
over seeds, 100 * (mean_A - mean_B) / |mean_B| (in % of B's metric; negative = A lower), and the
contrast is the average over problems. Its 95% interval is a two-level bootstrap (BOOTSTRAP
resamples, a fixed generator seed, so the report is reproducible): settings are drawn with
replacement (a setting's problems move together: its budgets share the task and optimizer, so they
are not independent), and within each drawn problem the seeds are drawn with replacement, the same
seeds for A and B where the two share them (paired), independently where they do not. The percentile
interval is reported. The verdict says which is better when the interval excludes 0, else that no
difference is shown; with fewer than MIN_SETTINGS settings there is none: a single setting's problems
move as one block, so its interval holds seed noise only, not how the difference varies between
settings (and with 2 seeds a problem's bootstrap mean takes 3 values at most).

Like the best group (schedsweep.results.significance), this uses each schedule's best LR picked on the
same seeds, which favours every schedule alike here (both sides are picked), and the interval does not
account for that pick. The contrasts: REX - linear and linear - cosine (the two papers' claims), and
each schedule - the baseline (`--baseline`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

BOOTSTRAP = 2000
SEED = 0
CLAIMS = (("rex", "linear"), ("linear", "cosine"))
MIN_SETTINGS = 3  # settings resampled for a verdict: 1 or 2 give 1 or 3 distinct compositions
COLUMNS = ("contrast", "a", "b", "problems", "settings", "paired", "a_better", "diff_pct", "ci_low", "ci_high", "verdict")


def pairs(schedules: list[str], baseline: str) -> list[tuple[str, str]]:
    """The contrasts to compute: the papers' claims present here, then each schedule against the baseline."""
    have = set(schedules)
    out = [(a, b) for a, b in CLAIMS if a in have and b in have]
    out += [(s, baseline) for s in schedules if baseline in have and s != baseline and (baseline, s) not in out]
    return list(dict.fromkeys(out))


def contrasts(ranked: pd.DataFrame, seeds: pd.DataFrame, baseline: str, maximize: bool = False,
              n_boot: int = BOOTSTRAP) -> pd.DataFrame:
    """One row per contrast (see the module docstring).

    `seeds`: the per-seed scores at each cell's best LR: columns problem (an id), setting (an id),
    schedule, seed, value (the metric as logged). Columns: contrast, a, b, problems, settings, paired
    (problems where the two share >= 2 seeds), a_better (problems where A's mean is better), diff_pct,
    ci_low, ci_high, verdict.
    """
    schedules = [str(s) for s in dict.fromkeys(ranked["schedule"])]
    rows = [_one(seeds, a, b, maximize, n_boot) for a, b in pairs(schedules, baseline)]
    return pd.DataFrame([r for r in rows if r is not None], columns=list(COLUMNS))


def _one(seeds: pd.DataFrame, a: str, b: str, maximize: bool, n_boot: int) -> dict[str, Any] | None:
    by = {s: g for s, g in seeds[seeds["schedule"].isin([a, b])].groupby("schedule", sort=False)}
    if a not in by or b not in by:
        return None
    left = {p: dict(zip(g["seed"], g["value"])) for p, g in by[a].groupby("problem", sort=False)}
    right = {p: dict(zip(g["seed"], g["value"])) for p, g in by[b].groupby("problem", sort=False)}
    setting_of = dict(zip(seeds["problem"], seeds["setting"]))
    problems = [p for p in left if p in right]
    if not problems:
        return None
    rng = np.random.default_rng(SEED)
    stats = np.empty((n_boot, len(problems)))
    point, better, paired = [], 0, 0
    for j, p in enumerate(problems):
        x, y = left[p], right[p]
        shared = [s for s in x if s in y]
        if len(shared) >= 2:
            paired += 1
            xa, ya = np.array([x[s] for s in shared]), np.array([y[s] for s in shared])
            idx = rng.integers(0, len(shared), (n_boot, len(shared)))
            ma, mb = xa[idx].mean(axis=1), ya[idx].mean(axis=1)
        else:
            xa, ya = np.array(list(x.values())), np.array(list(y.values()))
            ma = xa[rng.integers(0, len(xa), (n_boot, len(xa)))].mean(axis=1)
            mb = ya[rng.integers(0, len(ya), (n_boot, len(ya)))].mean(axis=1)
        stats[:, j] = _relative(ma, mb)
        point.append(float(_relative(np.array([xa.mean()]), np.array([ya.mean()]))[0]))
        better += int(xa.mean() > ya.mean() if maximize else xa.mean() < ya.mean())
    settings = sorted({setting_of[p] for p in problems})
    column = np.array([settings.index(setting_of[p]) for p in problems])
    weights = rng.multinomial(len(settings), [1 / len(settings)] * len(settings), size=n_boot)[:, column]
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (weights * stats).sum(axis=1) / weights.sum(axis=1)
    boot = boot[np.isfinite(boot)]
    low, high = (np.percentile(boot, [2.5, 97.5]) if len(boot) else (math.nan, math.nan))
    diff = float(np.mean(point))
    lower_better = f"{a} better" if not maximize else f"{b} better"
    higher_better = f"{b} better" if not maximize else f"{a} better"
    verdict = lower_better if high < 0 else higher_better if low > 0 else "no difference shown"
    if len(settings) < MIN_SETTINGS:
        verdict = f"none ({len(settings)} setting{'s' if len(settings) > 1 else ''})"
    return {"contrast": f"{a} - {b}", "a": a, "b": b, "problems": len(problems), "settings": len(settings),
            "paired": paired, "a_better": better, "diff_pct": diff, "ci_low": float(low), "ci_high": float(high),
            "verdict": verdict}


def _relative(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * (a - b) / np.abs(b)


def seed_scores(ranked: pd.DataFrame, best: pd.DataFrame, column: str) -> pd.DataFrame:
    """The `seeds` frame of `contrasts` from report.best_runs (finished runs at each cell's best LR).

    Cells without a finite mean and `same_as` rows (a copy of another schedule) are left out.
    """
    setting = list(ranked.columns[: list(ranked.columns).index("budget")])
    problem = ranked.groupby([*setting, "budget", "steps"], sort=False, dropna=False).ngroup()
    sid = ranked.groupby(setting, sort=False, dropna=False).ngroup()
    ok = np.isfinite(ranked["mean"].astype(float))
    if "same_as" in ranked.columns:
        ok &= ranked["same_as"].fillna("").eq("")
    cell = best["_cell"].to_numpy()
    keep = ok.to_numpy()[cell] & np.isfinite(best[column].astype(float).to_numpy())
    return pd.DataFrame({"problem": problem.to_numpy()[cell][keep], "setting": sid.to_numpy()[cell][keep],
                         "schedule": ranked["schedule"].astype(str).to_numpy()[cell][keep],
                         "seed": best["seed"].to_numpy()[keep], "value": best[column].astype(float).to_numpy()[keep]})
