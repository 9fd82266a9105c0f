"""Which differences are real: per problem, the schedules not significantly worse than the winner.

A *problem* is one (setting, budget). Its winner is the distinct schedule (schedsweep.results.identical)
with the best mean at its best peak LR. Every other schedule is tested against the winner on the
per-seed final metric at each one's own best LR:

* **Paired t-test, one-sided**, when the two share at least 2 seeds (the study's runs do: a seed fixes
  the initialisation and the data order of every schedule alike, so the per-seed differences cancel
  that variance). H0: the schedule's mean equals the winner's; H1: it is worse. The statistic is
  mean(d) / (sd(d) / sqrt(n)) over the shared seeds' differences d = schedule - winner (oriented so
  that higher is worse), with n - 1 degrees of freedom. Seeds the two do not share are left out of it.
* **Welch's t-test, one-sided** otherwise (unequal variances, Welch-Satterthwaite degrees of freedom),
  when each has at least 2 seeds.
* **No test** with 1 seed (or fewer than 2 shared and fewer than 2 each): p_vs_best is empty and the
  best group is the winner alone (with any schedule tied with its mean). The report says so in a note.

A t-test rather than Wilcoxon's signed-rank test: with 3 seeds the smallest one-sided p-value the
signed-rank test can give is 1/8 = 0.125, so it could never find a difference at 5%. The t-test assumes
normal per-seed differences, which 3 seeds cannot check. A zero spread of the differences (the
same result at every seed, e.g. deterministic runs) gives p = 1 for a zero mean difference and p = 0
for a positive one. No correction for the number of schedules tested against the winner (each test
is at 5%).

**Selection bias, not corrected.** The winner is the lowest of several means, and each schedule's best
LR is the lowest of its LRs' means, both picked on the very seeds the test then uses. Both picks favour
noise that happened to be low, most of all the winner's (the winner's curse), so the tests find "worse"
more often than they should: the best group is, if anything, too small, and p_vs_best too low. An
unbiased test would need seeds held out from the picking (e.g. pick on seeds 0-2, test on 3-5); the
sweep does not run them.

best_group = the winner, schedules tied with it, and every schedule with p_vs_best >= ALPHA. A schedule
without a finite result is never in it.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd

ALPHA = 0.05  # one-sided, per comparison with the winner
PAIRED, WELCH = "paired t", "Welch t"
# Two-sided 95% Student t quantiles t(0.975, df) for df = 1..30; beyond, a Cornish-Fisher expansion
# in 1/df (error < 1e-4). No scipy: this is the one quantile the report needs.
T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788,
        2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639,
        2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


def t_quantile(df: int) -> float:
    """t(0.975, df): the 95% two-sided Student t quantile (NaN for df < 1)."""
    if df < 1:
        return math.nan
    if df <= len(T975):
        return T975[df - 1]
    z = 1.959963985
    g = ((z**3 + z) / 4, (5 * z**5 + 16 * z**3 + 3 * z) / 96, (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384)
    return z + g[0] / df + g[1] / df**2 + g[2] / df**3


def p_worse(x: dict[Any, float], best: dict[Any, float]) -> tuple[float, str]:
    """One-sided p-value that schedule scores `x` (seed -> score, lower is better) are worse than `best`'s.

    Returns (p, test): the paired t-test over the shared seeds when there are >= 2, else Welch's t-test
    when each side has >= 2 seeds, else (NaN, "").
    """
    shared = [s for s in x if s in best]
    if len(shared) >= 2:
        d = np.array([x[s] - best[s] for s in shared], dtype=float)
        n, mean, sd = len(d), float(d.mean()), float(d.std(ddof=1))
        if not math.isfinite(mean):
            return math.nan, ""
        if sd == 0:
            return (0.0 if mean > 0 else 1.0), PAIRED
        return t_sf(mean / (sd / math.sqrt(n)), n - 1), PAIRED
    a, b = np.array(list(x.values()), dtype=float), np.array(list(best.values()), dtype=float)
    if len(a) < 2 or len(b) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.nan, ""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    diff = float(a.mean() - b.mean())
    if va + vb == 0:
        return (0.0 if diff > 0 else 1.0), WELCH
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return t_sf(diff / math.sqrt(va + vb), df), WELCH


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` > 0 degrees of freedom (any real df: Welch's are fractional).

    P(T > t) = I_x(df/2, 1/2) / 2 for t >= 0 with x = df / (df + t^2), I the regularised incomplete
    beta function; 1 - P(T > -t) below 0. No scipy: importing scipy.stats costs the report ~0.6 s,
    for one function (tests check this one against it).
    """
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    # x and 1 - x computed apart: for |t| near 0, 1 - x = t^2 / (df + t^2) would round to 0 from x.
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t), t * t / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def _betainc(a: float, b: float, x: float, y: float) -> float:
    """The regularised incomplete beta function I_x(a, b), y = 1 - x: its continued fraction by Lentz's
    method (Numerical Recipes' betacf), on the side of x where it converges fast."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, y, x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y))
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return front * h / a


def best_groups(cells: pd.DataFrame, scores: dict[int, dict[Any, float]], problem: str) -> pd.DataFrame:
    """p_vs_best, p_test and best_group for every cell.

    `cells`: one row per (problem, schedule) with `problem` (a problem id), `_finite` (the oriented
    mean; NaN without a finite one), `rank` and `same_as`; its index keys `scores` (seed -> oriented
    score at the cell's best LR). A same_as row takes its original's values.
    """
    p = pd.Series(math.nan, index=cells.index, dtype=float)
    test = pd.Series("", index=cells.index, dtype=object)
    distinct = cells[cells["same_as"].eq("")]
    for _, part in distinct.groupby(problem, sort=False):
        finite = part[part["_finite"].notna()]
        if finite.empty:
            continue
        winner = finite.sort_values(["_finite"], kind="stable").index[0]
        for i in finite.index:
            if i != winner:
                p[i], test[i] = p_worse(scores.get(i, {}), scores.get(winner, {}))
    group = cells["_finite"].notna() & (cells["rank"].eq(1) | (p >= ALPHA))
    out = pd.DataFrame({"p_vs_best": p, "p_test": test, "best_group": group})
    return _copy_originals(out, cells, problem)


def seed_scores(frame: pd.DataFrame, cells: pd.DataFrame) -> dict[Any, dict[Any, float]]:
    """Per cell (cells' index): seed -> oriented score of its finished runs at the cell's best LR."""
    best = frame["_cid"].map(pd.Series(cells["best_lr"].to_numpy(), index=cells["_cid"]))
    at_best = frame[(frame["lr"] == best) & np.isfinite(frame["_score"])]
    index_of = dict(zip(cells["_cid"], cells.index))
    out: dict[Any, dict[Any, float]] = {}
    for cid, seed, score in zip(at_best["_cid"], at_best["seed"], at_best["_score"]):
        out.setdefault(index_of[cid], {})[seed] = float(score)
    return out


def _copy_originals(out: pd.DataFrame, cells: pd.DataFrame, problem: str) -> pd.DataFrame:
    dups = cells.index[cells["same_as"].ne("")]
    if len(dups):
        where = {(pid, s): i for i, pid, s in zip(cells.index, cells[problem], cells["schedule"].astype(str))}
        for i in dups:
            j = where.get((cells.at[i, problem], cells.at[i, "same_as"]))
            if j is not None:
                out.loc[i] = out.loc[j]
    return out


def no_test_note(ranked: pd.DataFrame) -> list[str]:
    """A note when some problem had a runner-up but no test (1 seed): its best group is the winner alone."""
    if "p_test" not in ranked.columns:
        return []
    finite = ranked[np.isfinite(ranked["mean"].astype(float)) & ranked["same_as"].eq("") & ranked["rank"].gt(1)]
    untested = int(finite["p_test"].eq("").sum())
    if not untested:
        return []
    return [f"{untested} schedule result(s) have no significance test (fewer than 2 seeds): their problems' best "
            "group is the winner alone (and any schedule tied with it)."]


def share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return 100.0 * sum(values) / len(values) if values else math.nan
