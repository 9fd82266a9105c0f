"""Successive halving over the peak-LR axis, replayed on a finished sweep: which LRs a pruned sweep would
have trained at each budget, and what it would have found (benchmarks/pruning.py).

Per (setting, schedule) the budgets are rungs, smallest first. Every LR runs the smallest budget; each
larger budget runs only `kept(...)` of the LRs that ran the budget below, ranked by their mean over seeds
(oriented: lower is better; a diverged LR is +inf, last):

* RULE_NEIGHBOURS (the rule issue 21 proposed): the best ceil(n / eta), at least 2, and the best's
  neighbours among the LRs that ran below, so that the best can move one grid step;
* RULE_TOP: the best ceil(n / eta), at least 2 (no neighbours added);
* RULE_PAIR: the best and its better neighbour (2 LRs: the valley's two sides are the ones that can win);
* RULE_HALVE: successive halving's idea (Jamieson & Talwalkar 2016; Hyperband, Li et al. 2018: keep the
  best 1/eta each round), not its exact algorithm: the best ceil(n / eta), at least 1, over the sweep's own
  budgets rather than eta-fold ones (the papers' pseudo-code was not re-read for this). At the large budgets,
  where most of the steps are, one LR per schedule (the best LR drifts slowly with the budget). prune_lr's default (DEFAULT_RULE): the one rule that met the
  issue's targets on both sweeps it was replayed on (README, "Tune the peak LR").

The same rules decide online (prune_lr=ETA prune_rule=RULE, schedsweep.sweep.prune). A pruned LR's larger
budgets are not trained; the replay counts the steps of the runs that would have
been (no prefix sharing), and ranks the pruned sweep as `report` would (schedsweep.results.report.rank).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the plan imports the rules' names; pandas is for the replay's callers
    import pandas as pd

RULE_NEIGHBOURS, RULE_TOP, RULE_PAIR, RULE_HALVE = "neighbours", "top", "pair", "halve"
RULE_EXTRAP, RULE_EXTRAP_PAIR, RULE_EXTRAP_HALVE = "extrap", "extrap-pair", "extrap-halve"
RULES = (RULE_NEIGHBOURS, RULE_TOP, RULE_PAIR, RULE_HALVE, RULE_EXTRAP, RULE_EXTRAP_PAIR, RULE_EXTRAP_HALVE)
EXTRAPOLATED = {RULE_EXTRAP: RULE_TOP, RULE_EXTRAP_PAIR: RULE_PAIR, RULE_EXTRAP_HALVE: RULE_HALVE}  # -> how it keeps
DEFAULT_RULE = RULE_HALVE


def extrapolated(history: list[tuple[int, float]], steps: int) -> float:
    """An LR's metric at `steps` from its last two rungs ((steps, mean), ascending): a power law in the steps
    through both, log m = log m_i + (log m_i - log m_{i-1}) (log s - log s_i) / (log s_i - log s_{i-1}), never
    above m_i (more steps never hurt); the last mean when there is one rung, or a mean is not positive."""
    if len(history) < 2:
        return history[-1][1]
    (s0, m0), (s1, m1) = history[-2:]
    if not (math.isfinite(m0) and math.isfinite(m1)) or m0 <= 0 or m1 <= 0 or s1 <= s0:
        return m1
    slope = (math.log(m1) - math.log(m0)) / (math.log(s1) - math.log(s0))
    return min(m1, math.exp(math.log(m1) + slope * (math.log(steps) - math.log(s1))))


def kept(means: dict[float, float], eta: int, rule: str = RULE_NEIGHBOURS, minimum: int = 2) -> list[float]:
    """The LRs (of `means`: lr -> oriented mean at this rung) that go on to the next rung, ascending."""
    ran = sorted(means)
    order = sorted(ran, key=lambda lr: (means[lr] if math.isfinite(means[lr]) else math.inf, lr))
    best = ran.index(order[0])
    neighbours = [ran[i] for i in (best - 1, best + 1) if 0 <= i < len(ran)]
    if rule == RULE_PAIR:
        keep = {ran[best], *sorted(neighbours, key=lambda lr: means[lr])[:1]}
    else:
        keep = set(order[:_best_count(len(ran), eta, rule, minimum)])
        if rule == RULE_NEIGHBOURS:
            keep |= set(neighbours)
    return sorted(keep)


def _best_count(n: int, eta: int, rule: str, minimum: int = 2) -> int:
    """How many of n LRs a ceil(n / eta) rule keeps by rank: at least 1 for RULE_HALVE, else `minimum`."""
    return max(1 if rule == RULE_HALVE else minimum, math.ceil(n / eta))


def kept_next(history: dict[float, list[tuple[int, float]]], eta: int, rule: str, rung: int, next_steps: int) -> list[float]:
    """The LRs that go on to the rung of `next_steps`, from every LR's (steps, mean) at the rungs it ran
    (`rung`: the index of the last one, 0 the smallest). The extrapolated rules keep every LR at the first
    rung (a slope needs two), then rank on `extrapolated(...)` at the next rung's steps: RULE_EXTRAP the best
    ceil(n / eta), at least 2; RULE_EXTRAP_PAIR the best and its better neighbour; RULE_EXTRAP_HALVE the best
    ceil(n / eta), at least 1. Other rules: `kept`."""
    means = {lr: h[-1][1] for lr, h in history.items()}
    if rule not in EXTRAPOLATED:
        return kept(means, eta, rule)
    if rung == 0:
        return sorted(means)
    ahead = {lr: extrapolated(h, next_steps) for lr, h in history.items()}
    return kept(ahead, eta, EXTRAPOLATED[rule])


def replay(per_lr: pd.DataFrame, eta: int, rule: str = RULE_NEIGHBOURS) -> set[tuple[Any, ...]]:
    """The (cell key..., lr) a pruned sweep trains. `per_lr`: one row per (group, steps, lr) with `group`
    (setting and schedule, hashable), `steps` and `mean` (oriented; +inf diverged, NaN unknown)."""
    out: set[tuple[Any, ...]] = set()
    for group, part in per_lr.groupby("group", sort=False):
        alive: list[float] | None = None
        history: dict[float, list[tuple[int, float]]] = {}
        rungs = sorted(part["steps"].unique())
        for i, (steps, rung) in enumerate(part.groupby("steps", sort=True)):
            means = {float(lr): float(m) for lr, m in zip(rung["lr"], rung["mean"]) if alive is None or lr in alive}
            out.update((group, steps, lr) for lr in means)
            if not means or i + 1 == len(rungs):
                break
            for lr, m in means.items():
                history.setdefault(lr, []).append((int(steps), m if not np.isnan(m) else math.inf))
            alive = kept_next({lr: history[lr] for lr in means}, eta, rule, i, int(rungs[i + 1]))
    return out


def most_kept(n_lrs: int, n_rungs: int, eta: int, rule: str) -> list[int]:
    """The most LRs each rung trains (smallest budget first) when the smallest trains `n_lrs`: what a dry run
    can promise before any result (RULE_NEIGHBOURS adds up to 2 neighbours, so this is an upper bound)."""
    counts = [n_lrs]
    for rung in range(1, n_rungs):
        n = counts[-1]
        if rule in EXTRAPOLATED and rung == 1:
            counts.append(n)
            continue
        how = EXTRAPOLATED.get(rule, rule)
        best = 1 if how == RULE_PAIR else _best_count(n, eta, how)  # pair: the best and one neighbour
        counts.append(min(n, best + (2 if how == RULE_NEIGHBOURS else 1 if how == RULE_PAIR else 0)))
    return counts
