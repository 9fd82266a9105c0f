"""Does a fitted law rank this sweep's schedules? Checked on the runs the sweep has, before any ranking is shown.

Two checks, whichever the fit leaves data for:
- held-out runs: with runs `--fit` left out, the law predicts their final loss; the check compares the
  predicted and actual order of the schedules per budget (every done run of the group, mean over seeds);
- the first half of each curve: when every run was fitted, the law is fitted again on the first half
  of each fitted curve's observed points and predicts the final losses; the same comparison follows.

The verdict, from the winners (top-1) and Spearman's rank correlation over the budgets with two or more
schedules: "ranks" (every winner right, mean Spearman >= 0.8), "does not rank" (at most half of the
winners right, or mean Spearman < 0.5), "roughly" between; "cannot tell" with one schedule per budget.

A fitted parameter is degenerate at a bound of its domain (a rate or exponent at 0, the Tissue law's
lambda at 0 or 1) or when it has grown 1e6 x beyond its starting value (schedsweep.predict.fitting):
the law then fits the curves by an artefact, e.g. the Multi-Power Law's C -> infinity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from schedsweep.predict.fitting import Curve, PredictError, fit
from schedsweep.predict.laws import Law

GOOD_SPEARMAN, BAD_SPEARMAN = 0.8, 0.5
RUNAWAY = 1e6  # a parameter this many times its start has run away
STARTS = {"C": 1.0, "beta": 0.5, "gamma": 0.5, "alpha": 0.5}  # fitting.AUTHORS_START and the step-1 grid's exponents
AT_ZERO = 1e-8  # a positive parameter (kept positive as exp(log p)) at its bound 0
RANKS, ROUGHLY, NO_RANK, CANNOT_TELL = "ranks", "roughly", "does not rank", "cannot tell"


@dataclass(frozen=True)
class Validation:
    method: str  # how the figure was obtained
    error: float  # mean relative error of the predicted final losses on the validation runs
    spearman: float  # mean over the budgets with >= 2 schedules; NaN if none
    winners: int  # budgets whose predicted best schedule is the actual best
    budgets: int  # budgets with >= 2 schedules
    verdict: str

    @property
    def ranks(self) -> bool:
        return self.verdict != NO_RANK

    def line(self) -> str:
        spread = "" if not self.budgets else (f"; predicted winner right at {self.winners} of {self.budgets} budget(s), "
                                              f"mean Spearman {self.spearman:.2f}")
        words = {RANKS: "it ranks this sweep's schedules", ROUGHLY: "it ranks them roughly: check the close ones",
                 NO_RANK: "it does NOT rank this sweep's schedules: do not use its ranking",
                 CANNOT_TELL: "its ranking cannot be checked (one schedule per budget)"}
        return f"validation on {self.method}: final loss off by {self.error:.2%} on average{spread}. Verdict: {words[self.verdict]}."


def verdict(spearman: float, winners: int, budgets: int) -> str:
    if budgets == 0:
        return CANNOT_TELL
    if winners <= budgets / 2 or not spearman >= BAD_SPEARMAN:
        return NO_RANK
    return RANKS if winners == budgets and spearman >= GOOD_SPEARMAN else ROUGHLY


def validate(group: object) -> Validation:
    """The check for one predict.sweep.Group (held-out runs if any, else the first half of each curve)."""
    from schedsweep.predict.sweep import rankings

    runs = group.runs  # type: ignore[attr-defined]
    held = runs[~runs["fitted"]]
    if not held.empty:
        ranks = rankings(group)
        return _result(f"{len(held)} held-out run(s)", float(held["rel_error"].mean()), ranks)
    halves = []
    for rid in runs.loc[runs["fitted"], "id"]:
        lr, steps, loss, _ = group.curves[rid]  # type: ignore[attr-defined]
        keep = steps <= steps[-1] / 2
        halves.append(Curve(lr, steps[keep], loss[keep], rid))
    try:
        half = fit(halves, law=group.law.kind)  # type: ignore[attr-defined]
    except PredictError:
        return Validation("the first half of each curve (too few points to fit)", math.nan, math.nan, 0, 0, CANNOT_TELL)
    table = runs.copy()
    table["predicted"] = [float(half.predict(group.curves[rid][0], group.curves[rid][1][-1:])[0])  # type: ignore[attr-defined]
                          for rid in table["id"]]
    table["rel_error"] = (table["predicted"] - table["actual"]).abs() / table["actual"]
    shadow = type(group)(group.key, half, group.full_steps, table)  # type: ignore[attr-defined,call-arg]
    return _result("the first half of each fitted curve, predicting its end", float(table["rel_error"].mean()),
                   rankings(shadow))


def _result(method: str, error: float, ranks: pd.DataFrame) -> Validation:
    if ranks.empty:
        return Validation(method, error, math.nan, 0, 0, CANNOT_TELL)
    spearman = float(np.nanmean(ranks["spearman"])) if ranks["spearman"].notna().any() else math.nan
    winners, budgets = int(ranks["top1"].sum()), len(ranks)
    return Validation(method, error, spearman, winners, budgets, verdict(spearman, winners, budgets))


def degenerate(law: Law) -> list[str]:
    """The fitted parameters at a bound of their domain or run away from their start, each with why."""
    out = []
    shown = law.params  # the values `predict` prints (the LR's own units); the checks are on the fitted ones
    for name, value in law.raw.items():
        if name == "lam" and not AT_ZERO < value < 1 - AT_ZERO:
            out.append(f"lam={shown[name]:.4g} is at its bound {'1' if value > 0.5 else '0'}")
        elif name in ("A", "B", "C", "alpha", "beta", "gamma") and abs(value) <= AT_ZERO:
            out.append(f"{name}={shown[name]:.4g} is at its bound 0")
        elif name in STARTS and abs(value) >= RUNAWAY * STARTS[name]:
            out.append(f"{name}={shown[name]:.4g} has run away: {abs(value) / STARTS[name]:.2g} x its starting value")
        elif name == "L0" and value < 0:
            out.append(f"L0={value:.4g} puts the loss's floor below 0")
    return out
