"""Identical schedules are one competitor: the same LR sequence at a budget is one schedule, not two.

At small budgets schedules collapse: WSD's 5% warm-up and 20% cooldown round to 0 steps at 10 steps, so
WSD *is* constant there, step for step; at 2 steps linear and cosine are both [1, 0.5]. Counted apart,
both would take a Top-1 for one result, and every schedule behind them would lose a rank. A schedule
planned twice under two names (a copy of linear.yaml) is a single run in the plan (its ids are equal):
the plan records the second name in the kept run's `aliases` (schedsweep.plan.grid), and here it
comes back as a row of its own, so the report names it instead of letting it vanish.

The plan is the source: each run's schedule spec and steps give its multiplier sequence
(schedsweep.schedules.values); equal sequences (to 12 decimals: the multipliers lie in [0, 1], and
two formulas of one value differ by float noise) have equal digests. `plateau` depends on the losses it sees, so it has no fixed sequence,
except in a run too short to lower its LR: with E = eval_every, the evaluations that can change a
later update are the (T - 1) // E after updates E-1, 2E-1, ... before the last; a decay needs
patience + 1 bad ones after the first (which always improves on +inf), so with fewer than
patience + 2 of them the LR is the warm-up, then the peak: constant, step for step. The report column `same_as` names the first schedule, in plan order, with the same
sequence in the same (setting, budget); such a row takes that schedule's rank, and the cross-setting
Top-k and average-rank tables leave it out (schedsweep.results.compare).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

from schedsweep import schedules
from schedsweep.errors import SchedsweepError

DIGEST = "_lr_digest"  # the runs-frame column: a digest of the run's LR multipliers, None when not fixed
ALIASES = "aliases"  # a plan record's other schedule names (planned once: schedsweep.plan.grid)
DIGITS = 12


def digests(records: list[dict[str, Any]]) -> dict[str, str | None]:
    """Run id -> digest of its multiplier sequence f(0..T-1); None for a stateful or unparsable schedule."""
    cache: dict[tuple[str, int, Any], str | None] = {}
    out: dict[str, str | None] = {}
    for record in records:
        spec = record.get("spec") or {}
        schedule, steps = spec.get("schedule"), spec.get("steps")
        if not isinstance(schedule, dict) or not isinstance(steps, int):
            out[record["id"]] = None
            continue
        eval_every = (record.get("log") or {}).get("eval_every")
        key = (json.dumps(schedule, sort_keys=True, default=str), steps, eval_every)
        if key not in cache:
            cache[key] = _digest(schedule, steps, eval_every)
        out[record["id"]] = cache[key]
    return out


def _digest(schedule: dict[str, Any], steps: int, eval_every: Any = None) -> str | None:
    try:
        f = schedules.build(schedule, steps)
    except (SchedsweepError, TypeError, ValueError):
        return None
    if isinstance(f, schedules.AutoLRS):  # its LRs are chosen by trials during the run
        return None
    if isinstance(f, schedules.Plateau):
        # Never lowered within the run: its sequence is fixed (see the module docstring).
        if not isinstance(eval_every, int) or eval_every < 1 or (steps - 1) // eval_every >= f.patience + 2:
            return None
    elif not callable(f):
        return None
    with np.errstate(all="ignore"):
        values = np.asarray(f(np.arange(steps, dtype=np.float64)), dtype=np.float64)
    rounded = np.round(values, DIGITS) + 0.0  # multipliers lie in [0, 1]; + 0.0 turns -0.0 into 0.0
    return hashlib.sha256(rounded.tobytes()).hexdigest()[:16]


def attach(runs: pd.DataFrame, records: list[dict[str, Any]]) -> pd.DataFrame:
    """The runs with their `_lr_digest`, plus one copy of each run per alias the plan merged into it.

    The copy is the same run (same id, same results) under the alias's schedule name, appended after
    every planned run so that `same_as` names the kept schedule.
    """
    by_id = digests(records)
    runs = runs.assign(**{DIGEST: runs["id"].map(by_id)})
    copies = []
    for record in records:
        for alias in record.get(ALIASES) or ():
            rows = runs[runs["id"] == record["id"]]
            copies.append(rows.assign(schedule=alias))
    if not copies:
        return runs
    out = pd.concat([runs, *copies], ignore_index=True)
    for column in runs.columns:  # concat turns object columns of ints (budget 500) into floats; keep them
        if runs[column].dtype == object:
            out[column] = pd.Series([*runs[column], *(v for c in copies for v in c[column])], dtype=object)
    return out


def same_as(cells: pd.DataFrame, problem: list[str]) -> pd.Series:
    """Per cell (one schedule in one problem): the first schedule of the problem with the same digest, else "".

    `cells` has the `problem` columns, `schedule` and DIGEST (None: never the same as anything).
    """
    first: dict[tuple[Any, ...], str] = {}
    out = []
    keys = zip(*(cells[c] for c in problem)) if problem else iter([()] * len(cells))
    for key, schedule, digest in zip(keys, cells["schedule"], cells[DIGEST]):
        if digest is None or (isinstance(digest, float) and np.isnan(digest)):
            out.append("")
            continue
        original = first.setdefault((*key, digest), str(schedule))
        out.append("" if original == str(schedule) else original)
    return pd.Series(out, index=cells.index, dtype=object)


def original_values(cells: pd.DataFrame, problem: list[str], column: str) -> pd.Series:
    """`column`, with each same_as row's value replaced by its original's (in the same problem)."""
    values = cells[column].copy()
    dups = cells.index[cells["same_as"].ne("")]
    if len(dups):
        keys = list(zip(*(cells[c] for c in problem), cells["schedule"].astype(str)))
        where = dict(zip(keys, cells.index))
        for i, key in zip(cells.index, keys):
            if cells.at[i, "same_as"]:
                j = where.get((*key[:-1], cells.at[i, "same_as"]))
                if j is not None:
                    values[i] = cells.at[j, column]
    return values
