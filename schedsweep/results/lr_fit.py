"""The best peak LR between grid points (`report --fit-lr`): a quadratic in log LR per cell, and a power law
of the fitted LR against the budget's steps per (setting, schedule).

**lr\\* per cell** (one setting, budget and schedule). Its finite per-LR means (schedsweep.results.report
.lr_sensitivity, oriented so that lower is better) around its best LR: the best and up to SPAN grid points
on each side, contiguous (a diverged LR ends the window: it is "too high", not a number). With at least 3
points, weighted least squares of

    y(x) = a + b x + c x^2,   x = ln(lr)

with weights 1 / se^2, se = std / sqrt(n) of the mean over seeds, when every point has a positive se
(>= 2 seeds that differ); otherwise equal weights. A minimum needs c > 0; then

    x* = -b / (2c),   lr* = exp(x*),
    var(x*) = g' Cov(b, c) g,   g = (-1 / (2c), b / (2c^2))      (the delta method)

Cov is (X' W X)^-1 with the seeds' weights (known variances: a normal 95% quantile, 1.96), or
s^2 (X' X)^-1 with equal weights and more points than parameters (s^2 = RSS / (m - 3), t(0.975, m - 3));
with 3 equally weighted points the parabola interpolates and there is no CI. The CI is exp(x* +- q sd(x*)).
`inside`: lr* lies within the LRs with a finite result: outside, it is an extrapolation and the grid
needs extending (`launch --extend-lr`), even where a diverged LR bounds it from above.

A parabola in log LR is the usual local model of the LR valley (marin#7856); far from the optimum the
valley is asymmetric (steep towards divergence), hence the window of SPAN points each side, not the grid.

**Power law** per (setting, schedule): ln lr* = ln A + alpha ln steps, least squares over the budgets
whose lr* is inside its grid (>= 2 budgets), so lr*(steps) = A steps^alpha predicts a budget not swept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from schedsweep.results.significance import t_quantile

SPAN = 2  # grid points each side of the best: up to 5 in the fit
Z975 = 1.959963985
FIT_COLUMNS = ("lr_star", "lr_star_low", "lr_star_high", "lr_star_inside", "lr_points", "lr_weights")
LAW_COLUMNS = ("budgets", "exponent", "coefficient", "ref_steps", "lr_at_ref")


def quadratic_minimum(lr: np.ndarray, mean: np.ndarray, se: np.ndarray | None = None) -> dict[str, Any]:
    """lr*, its 95% CI and how the points were weighted, from a weighted quadratic fit in ln(lr).

    `se`: standard errors of the means (None or any non-positive/NaN one: equal weights). NaN lr* when the
    fit has no minimum (c <= 0) or fewer than 3 points.
    """
    out = {"lr_star": math.nan, "lr_star_low": math.nan, "lr_star_high": math.nan, "lr_weights": ""}
    x, y = np.log(np.asarray(lr, float)), np.asarray(mean, float)
    m = len(x)
    if m < 3:
        return out
    weighted = se is not None and bool(np.all(np.isfinite(se)) and np.all(np.asarray(se) > 0))
    w = 1.0 / np.asarray(se, float) ** 2 if weighted else np.ones(m)
    centre = x.mean()  # centred for conditioning: ln(1e-4) is -9
    design = np.stack([np.ones(m), x - centre, (x - centre) ** 2], axis=1)
    xtwx = design.T @ (design * w[:, None])
    try:
        inv = np.linalg.inv(xtwx)
    except np.linalg.LinAlgError:
        return out
    a, b, c = inv @ (design.T @ (w * y))
    out["lr_weights"] = "seeds" if weighted else "equal"
    if not c > 0:
        return out
    xs = -b / (2 * c)
    out["lr_star"] = float(math.exp(centre + xs))
    if weighted:
        cov, q = inv, Z975
    elif m > 3:
        resid = y - design @ np.array([a, b, c])
        cov, q = inv * float(resid @ resid) / (m - 3), t_quantile(m - 3)
    else:
        return out
    g = np.array([-1 / (2 * c), b / (2 * c * c)])
    var = float(g @ cov[1:, 1:] @ g)
    if var >= 0 and math.isfinite(var):
        half = q * math.sqrt(var)
        out["lr_star_low"], out["lr_star_high"] = math.exp(centre + xs - half), math.exp(centre + xs + half)
    return out


def fit_cells(sensitivity: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per cell (`keys`: setting columns, budget, steps, schedule) of `sensitivity` (one row per
    cell and LR: lr, mean, std, n, lower is better after orientation by `maximize`): FIT_COLUMNS."""
    rows = []
    for key, part in sensitivity.groupby(keys, sort=False, dropna=False):
        part = part.sort_values("lr")
        lrs = part["lr"].to_numpy(float)
        mean = part["mean"].to_numpy(float)
        fit = {"lr_star": math.nan, "lr_star_low": math.nan, "lr_star_high": math.nan, "lr_weights": "", "lr_points": 0}
        finite = np.isfinite(mean)
        if finite.any():
            best = int(np.nanargmin(np.where(finite, mean, np.nan)))
            lo, hi = best, best
            while lo > 0 and best - lo < SPAN and finite[lo - 1]:
                lo -= 1
            while hi < len(lrs) - 1 and hi - best < SPAN and finite[hi + 1]:
                hi += 1
            window = slice(lo, hi + 1)
            se = (part["std"] / np.sqrt(part["n"])).to_numpy(float)[window]
            fit = {**quadratic_minimum(lrs[window], mean[window], se), "lr_points": hi - lo + 1}
        star, ran = fit["lr_star"], lrs[finite]
        inside = bool(math.isfinite(star) and ran.min() <= star <= ran.max())
        rows.append({**dict(zip(keys, key)), **fit, "lr_star_inside": inside})
    frame = pd.DataFrame(rows, columns=[*keys, *FIT_COLUMNS])
    frame["budget"] = pd.Series([r["budget"] for r in rows], dtype=object)
    return frame


def fit_lr(sensitivity: pd.DataFrame, setting: list[str], maximize: bool = False) -> pd.DataFrame:
    """fit_cells over a report's lr_sensitivity table (its means in the metric's own sign)."""
    oriented = sensitivity.assign(mean=(-1.0 if maximize else 1.0) * sensitivity["mean"])
    return fit_cells(oriented, [*setting, "budget", "steps", "schedule"])


def power_law(fits: pd.DataFrame, setting: list[str]) -> pd.DataFrame:
    """Per (setting, schedule): lr*(steps) = coefficient * steps^exponent, fitted on the budgets whose lr* is
    inside its grid (>= 2 budgets of distinct steps); lr_at_ref = the law at ref_steps, the largest budget's steps."""
    rows = []
    for key, part in fits.groupby([*setting, "schedule"], sort=False, dropna=False):
        ok = part[part["lr_star_inside"].astype(bool)]
        row = {**dict(zip([*setting, "schedule"], key)), "budgets": len(ok), "exponent": math.nan,
               "coefficient": math.nan, "ref_steps": int(part["steps"].max()), "lr_at_ref": math.nan}
        if ok["steps"].nunique() >= 2:
            alpha, log_a = np.polyfit(np.log(ok["steps"].astype(float)), np.log(ok["lr_star"].astype(float)), 1)
            row.update(exponent=float(alpha), coefficient=float(math.exp(log_a)),
                       lr_at_ref=float(math.exp(log_a) * row["ref_steps"] ** alpha))
        rows.append(row)
    return pd.DataFrame(rows, columns=[*setting, "schedule", *LAW_COLUMNS])


def attach(ranked: pd.DataFrame, fits: pd.DataFrame, setting: list[str]) -> pd.DataFrame:
    """The ranking with an `lr_star` column (NaN where no fit), matched on setting, budget, steps and schedule."""
    keys = [*setting, "budget", "steps", "schedule"]
    star = {tuple(map(repr, k)): v for k, v in zip(fits[keys].itertuples(index=False), fits["lr_star"])}
    values = [star.get(tuple(map(repr, k)), math.nan) for k in ranked[keys].itertuples(index=False)]
    out = ranked.copy()
    out.insert(list(out.columns).index("best_lr") + 1, "lr_star", pd.Series(values, index=out.index, dtype=float))
    return out
