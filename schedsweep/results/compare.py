"""Across settings: which schedule wins over many (setting, budget) problems, four ways.

Each function takes the ranked frame of schedsweep.results.report.rank (one row per setting, budget and
schedule; the setting columns are the ones before `budget`) and returns a DataFrame:

- `rank_by_budget`: REX Fig. 1 - a schedule's rank averaged over settings, per budget fraction.
- `top_k`: REX Table 1 - the share of problems where a schedule is Top-1 / Top-3, low (< 25% of the
  full budget: 1, 5, 10%) and high (>= 25%: 25, 50, 100%) budgets apart.
- `ratio_to_baseline` and `ratio_summary`: the refinement paper (Defazio et al. 2023) - each
  schedule's final metric over linear decay's, per problem.
- `performance_ratios`, `profile` and `profile_scores`: a Dolan-More performance profile (Dolan and
  More, Math. Programming 2002) of *final-metric* ratios - the share of problems where a schedule's final
  metric is within a factor tau of the best, and its integral up to r_max, normalised as AlgoPerf
  normalises its score. It is not AlgoPerf's profile (Dahl et al. 2023, arXiv 2306.07179), which
  profiles the *time to reach a target* with r_max = 4: final metrics of tuned schedules differ by
  percents, not multiples, so the report shows it at r_max = 1.1 and 1.02 instead.

A *problem* is one (setting, budget) cell: REX's "experimental setting".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

LOW_BUDGET = 0.25  # REX Table 1 (its caption): "Low" = 1, 5, 10% (< 25%), "High" = 25, 50, 100% (>= 25%)
# Within 10% of the best final metric. AlgoPerf integrates *time* ratios to r_max = 4; tuned schedules'
# final losses differ by percents, not multiples, so r_max = 4 would score every schedule close to 1.
R_MAX = 1.1
R_MAX_2 = 1.02  # the second r_max every report shows: within 2%
PROFILE_POINTS = 100  # AlgoPerf's compute_performance_profiles(num_points=100)


def budget_label(budget: Any) -> str:
    """'25%' for a fraction of the full run, '500 steps' for an absolute budget (ints are >= 2); a budget in
    tokens or samples is its label as planned ('1e9 tokens', schedsweep.plan.units)."""
    if isinstance(budget, str):
        return budget
    value = float(budget)
    return f"{value * 100:g}%" if value <= 1 else f"{int(value)} steps"


def setting_of(ranked: pd.DataFrame) -> list[str]:
    """The setting columns of a ranked frame: those before `budget`."""
    return list(ranked.columns[: list(ranked.columns).index("budget")])


def budget_fraction(ranked: pd.DataFrame) -> pd.Series:
    """Each row's budget as a fraction of the full run: the budget itself when <= 1 (it is one), else
    steps / the most steps of the row's setting (plan.jsonl records steps, not full_steps)."""
    setting = setting_of(ranked)
    most = ranked.groupby(setting, sort=False, dropna=False)["steps"].transform("max")
    budget = _amount(ranked["budget"])
    return budget.where(budget <= 1, ranked["steps"] / most).rename("fraction")


def _amount(budget: pd.Series) -> pd.Series:
    """Budgets as numbers; one in tokens or samples (a label, '1e9 tokens') is absolute: +inf here."""
    return pd.to_numeric(budget, errors="coerce").astype(float).fillna(np.inf)


def fraction_notes(ranked: pd.DataFrame) -> list[str]:
    if not (_amount(ranked["budget"]) > 1).any():
        return []
    return ["Budgets given in steps are placed at steps / the most steps of their setting "
            "(the run records hold steps, not full_steps) in the by-budget and Top-k tables."]


def distinct(ranked: pd.DataFrame) -> pd.DataFrame:
    """The rows that are competitors of their own: without those `same_as` another schedule."""
    if "same_as" not in ranked.columns:
        return ranked
    return ranked[ranked["same_as"].fillna("").eq("")]


def rank_by_budget(ranked: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """REX Fig. 1: each schedule's rank averaged over every setting, per budget fraction.

    Index: (*by, schedule). Columns: one per budget fraction (float, ascending) with the average
    rank there, then "all" (the average over every problem) and "n" (problems). A schedule is
    averaged over the problems where it was planned; missing and diverged results count with the
    ranks `rank` gave them (last); a `same_as` row (the same LR sequence as an earlier schedule) is
    left out, counted once as its original. Rows sorted by *by, then "all", then schedule.
    """
    ranked = distinct(ranked)
    frame = ranked.assign(fraction=budget_fraction(ranked))
    keys = [*by, "schedule"]
    wide = frame.groupby([*keys, "fraction"], sort=False)["rank"].mean().unstack("fraction")
    wide = wide[sorted(wide.columns)]
    grouped = frame.groupby(keys, sort=False)["rank"]
    wide["all"] = grouped.mean()
    wide["n"] = grouped.size()
    order = wide.reset_index()[[*keys, "all"]]
    order = order.sort_values([*by, "all", "schedule"], kind="stable").index
    return wide.iloc[order].astype({"n": int})


def top_k(ranked: pd.DataFrame, low: float = LOW_BUDGET, ks: tuple[int, ...] = (1, 3)) -> pd.DataFrame:
    """REX Table 1: % of problems where each schedule is Top-k, for low, high and all budgets.

    Low budgets have fraction < `low`, high ones >= `low` (REX Table 1: 25% is a high budget).
    A schedule identical to another at a budget (`same_as`) is that schedule there: the problem
    counts for the original only. With a `best_group` column (schedsweep.results.significance),
    {low,high,all}_best is the share of problems where the schedule is in the best group. Top-k means rank <= k with a finite mean
    (a tie for first is a Top-1 for each tied schedule, so a column may sum past 100%). Shares are
    over the problems where the schedule was planned (n_low, n_high, n_all); NaN where there are none.
    Columns: low_top1, low_top3, [low_best,] n_low, then the same for high and all, then same_as
    (the schedules it was identical to somewhere, "" if none).
    Rows sorted by all_top1, all_top3 (descending), schedule.
    """
    schedules = list(dict.fromkeys(ranked["schedule"]))
    same = _same_as_names(ranked, schedules)
    ranked = distinct(ranked)
    fraction = budget_fraction(ranked)
    finite = np.isfinite(ranked["mean"].astype(float))
    hits = pd.DataFrame({f"top{k}": (ranked["rank"] <= k) & finite for k in ks})
    grouped_by = [f"top{k}" for k in ks]
    if "best_group" in ranked.columns:
        hits["best"] = ranked["best_group"].astype(bool).to_numpy()
        grouped_by.append("best")
    hits["schedule"] = ranked["schedule"].to_numpy()
    parts = {"low": hits[fraction < low], "high": hits[fraction >= low], "all": hits}
    out = pd.DataFrame(index=pd.Index(schedules, name="schedule"))
    for name, part in parts.items():
        grouped = part.groupby("schedule", sort=False)
        for column in grouped_by:
            out[f"{name}_{column}"] = 100 * grouped[column].mean().reindex(schedules).astype(float)
        out[f"n_{name}"] = grouped.size().reindex(schedules).fillna(0).astype(int)
    out["same_as"] = same
    sort = [f"all_top{k}" for k in ks]
    return out.sort_values(sort, ascending=False, kind="stable")


def _same_as_names(ranked: pd.DataFrame, schedules: list[str]) -> list[str]:
    """Per schedule, the schedules it was identical to at some budget ("linear"; "" when none)."""
    if "same_as" not in ranked.columns:
        return [""] * len(schedules)
    dups = ranked[ranked["same_as"].fillna("").ne("")]
    names = {s: ", ".join(dict.fromkeys(g["same_as"].astype(str))) for s, g in dups.groupby("schedule", sort=False)}
    return [names.get(s, "") for s in schedules]


def ratio_to_baseline(ranked: pd.DataFrame, baseline: str = "linear") -> pd.DataFrame:
    """The refinement paper's comparison: each schedule's mean over the baseline's, per problem.

    Index: (*setting columns, budget), problems in ranked order. Columns: every schedule but the
    baseline, in first-seen order. ratio = mean / baseline mean; < 1 is a lower metric than the
    baseline. A diverged schedule's ratio is inf (minimizing) or 0 (maximizing); a missing one NaN.
    Problems where the baseline has no finite, positive mean are left out, and `.attrs["notes"]`
    says how many and why.
    """
    setting = setting_of(ranked)
    maximize = bool(ranked.attrs.get("maximize", False))
    problem = [*setting, "budget", "steps"]
    pid = ranked.groupby(problem, sort=False, dropna=False).ngroup()
    is_base = (ranked["schedule"] == baseline).to_numpy()
    base = dict(zip(pid[is_base], ranked["mean"][is_base].astype(float)))
    frame = ranked.assign(_pid=pid, _base=pid.map(base).astype(float))
    mean = frame["mean"].astype(float)
    ratio = mean / frame["_base"]
    ratio = ratio.mask(frame["mark"] == "diverged", 0.0 if maximize else math.inf)
    frame = frame.assign(ratio=ratio)
    ok = frame["_base"].notna() & np.isfinite(frame["_base"]) & (frame["_base"] > 0)
    notes: list[str] = []
    n_problems, n_kept = pid.nunique(), frame.loc[ok, "_pid"].nunique()
    if not is_base.any():
        notes.append(f"No ratio table: '{baseline}' was not swept (add schedule={baseline},... or choose another "
                     "baseline with --baseline).")
    elif n_kept == 0:
        notes.append(f"No problem has a finite, positive result for '{baseline}': no ratio table "
                     "(choose another baseline with --baseline).")
    elif n_kept < n_problems:
        lacking = n_problems - frame.loc[frame["schedule"] == baseline, "_pid"].nunique()
        other = n_problems - n_kept - lacking
        why = [f"{lacking} have no '{baseline}' runs"] if lacking else []
        why += [f"{other} have no finite, positive '{baseline}' result"] if other else []
        notes.append(f"Ratios to {baseline}: {n_kept} of {n_problems} problems; {' and '.join(why)}.")
    kept = frame[ok & (frame["schedule"] != baseline)]
    firsts = kept.drop_duplicates("_pid").set_index("_pid")[[*setting, "budget"]]
    wide = kept.pivot(index="_pid", columns="schedule", values="ratio")
    wide = wide[[s for s in dict.fromkeys(kept["schedule"])]]
    wide.index = pd.MultiIndex.from_frame(firsts.loc[wide.index]) if len(wide) else pd.MultiIndex.from_arrays(
        [[] for _ in [*setting, "budget"]], names=[*setting, "budget"])
    wide.columns.name = None
    wide.attrs.update(baseline=baseline, maximize=maximize, notes=notes)
    return wide


def ratio_summary(ratios: pd.DataFrame, maximize: bool = False) -> pd.DataFrame:
    """Per schedule, over the problems of `ratio_to_baseline`: how often it beats the baseline.

    Columns: n (problems with a ratio), better, equal (within 1e-9), worse, geomean (geometric mean
    of the finite, positive ratios), best, worst. Better is a ratio < 1 (> 1 when maximizing).
    """
    rows = []
    for schedule in ratios.columns:
        r = ratios[schedule].dropna().to_numpy(dtype=float)
        equal = np.abs(r - 1) <= 1e-9
        better = (r > 1 if maximize else r < 1) & ~equal
        good = r[np.isfinite(r) & (r > 0)]
        rows.append({"schedule": schedule, "n": len(r), "better": int(better.sum()), "equal": int(equal.sum()),
                     "worse": int((~better & ~equal).sum()),
                     "geomean": float(np.exp(np.log(good).mean())) if len(good) else math.nan,
                     "best": float(r.max() if maximize else r.min()) if len(r) else math.nan,
                     "worst": float(r.min() if maximize else r.max()) if len(r) else math.nan})
    columns = ["schedule", "n", "better", "equal", "worse", "geomean", "best", "worst"]
    return pd.DataFrame(rows, columns=columns).set_index("schedule")


def problem_matrix(ranked: pd.DataFrame) -> pd.DataFrame:
    """Problems x schedules of each schedule's mean; NaN where the schedule was not planned.

    Index: (*setting columns, budget). Diverged means stay +-inf, missing results NaN.
    """
    setting = setting_of(ranked)
    pid = ranked.groupby([*setting, "budget", "steps"], sort=False, dropna=False).ngroup()
    frame = ranked.assign(_pid=pid)
    wide = frame.pivot(index="_pid", columns="schedule", values="mean")
    wide = wide[list(dict.fromkeys(frame["schedule"]))].astype(float)
    firsts = frame.drop_duplicates("_pid").set_index("_pid")[[*setting, "budget"]]
    wide.index = pd.MultiIndex.from_frame(firsts.loc[wide.index])
    wide.columns.name = None
    return wide


def performance_ratios(values: pd.DataFrame, maximize: bool | None = None) -> pd.DataFrame:
    """Dolan-More performance ratios r = value / best value of the problem (best / value when maximizing).

    `values`: a ranked frame, or a problems x solvers matrix (e.g. times to target, lower better). Any
    non-finite or missing value is a miss: r = inf. Problems whose best value is not finite and
    positive cannot be scaled and are left out (`.attrs["notes"]` says how many).
    """
    if "schedule" in values.columns and "mean" in values.columns:
        if maximize is None:
            maximize = bool(values.attrs.get("maximize", False))
        values = problem_matrix(values)
    maximize = bool(maximize)
    matrix = values.astype(float)
    finite = matrix.where(np.isfinite(matrix))
    best = finite.max(axis=1) if maximize else finite.min(axis=1)
    usable = best.notna() & (best > 0)
    ratios = (best.to_numpy()[:, None] / matrix) if maximize else (matrix / best.to_numpy()[:, None])
    ratios = ratios.where(np.isfinite(ratios) & (ratios > 0), math.inf)[usable]
    dropped = int((~usable).sum())
    notes = [f"Performance profile: {dropped} of {len(matrix)} problems left out (no finite, positive best "
             "result to scale by)."] if dropped else []
    ratios.attrs.update(notes=notes)
    return ratios


def profile(ratios: pd.DataFrame, r_max: float = R_MAX, points: int = PROFILE_POINTS) -> pd.DataFrame:
    """rho_s(tau) = share of problems with r_s <= tau, for tau on linspace(1, r_max, points).

    Index: tau. Columns: the solvers (schedules). Empty when there are no problems.
    """
    taus = np.linspace(1.0, r_max, points)
    r = ratios.to_numpy(dtype=float)
    if len(r) == 0:
        return pd.DataFrame(index=pd.Index(taus, name="tau"), columns=ratios.columns, dtype=float)
    rho = (r[None, :, :] <= taus[:, None, None]).mean(axis=1)
    return pd.DataFrame(rho, index=pd.Index(taus, name="tau"), columns=ratios.columns)


def profile_scores(ratios: pd.DataFrame, r_max: float = R_MAX, method: str = "exact",
                   points: int = PROFILE_POINTS) -> pd.DataFrame:
    """The profile's score B_s = (1 / (r_max - 1)) * integral from 1 to r_max of rho_s(tau) dtau (AlgoPerf's normalisation).

    "exact" integrates the step function: B_s = mean over problems of max(0, r_max - r) / (r_max - 1).
    "trapezoid" is AlgoPerf's code: np.trapezoid of rho on linspace(1, r_max, points), over r_max - 1
    (~1e-3 away from exact at 100 points). Columns: score, n (problems), best (r = 1), within (r <= r_max).
    Sorted by score, descending.
    """
    r = ratios.to_numpy(dtype=float)
    if method == "exact":
        score = np.clip(r_max - r, 0, r_max - 1).mean(axis=0) / (r_max - 1) if len(r) else np.full(r.shape[1], np.nan)
    elif method == "trapezoid":
        rho = profile(ratios, r_max, points)
        score = np.trapezoid(rho.to_numpy(), rho.index.to_numpy(), axis=0) / (r_max - 1)
    else:
        raise ValueError(f"unknown method {method!r}; choose exact or trapezoid.")
    out = pd.DataFrame({"score": score, "n": len(r), "best": (np.abs(r - 1) <= 1e-12).sum(axis=0),
                        "within": (r <= r_max).sum(axis=0)}, index=pd.Index(ratios.columns, name="schedule"))
    out.attrs.update(r_max=r_max, method=method)
    return out.sort_values("score", ascending=False, kind="stable")

