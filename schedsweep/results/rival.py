"""Averaged weights as the cooldown's rival (`report --averaged`): every run that kept an average
(average=ema|lawa, schedsweep.train.averaging) also competes as `<schedule>+<kind>`, scored by its averaged
columns, beside the schedules' own weights, in one ranking per budget.

So a sweep `schedule=constant,wsd average=none,ema` ranks, at each budget, `wsd` (the cooldown), `constant`,
`constant+ema` (the constant-LR trunk's EMA at the same step) and `wsd+ema`. Runs that differ only in their
averaging are one competitor for the raw weights (averaging never changes training: the rows are equal), so
the `average.*` setting columns are dropped and those duplicates counted once.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from schedsweep.errors import ConfigError
from schedsweep.results import identical

AVERAGE = "average."  # the setting columns of the spec's `average` part


def with_averages(runs: pd.DataFrame, kinds: dict[str, str], setting: Any) -> pd.DataFrame:
    """`runs` (the report's runs frame) with one more row per averaged run; `kinds`: run id -> its average
    kind; `setting(frame)`: the setting columns (schedsweep.results.report.setting_columns)."""
    if not kinds:
        raise ConfigError("--averaged ranks averaged weights beside the schedules, and no run of this sweep kept an "
                          "average: launch with average=ema or average=lawa (docs/guide/cooldowns.md).")
    raw = runs.drop(columns=[c for c in runs.columns if c.startswith(AVERAGE)])
    key = [*setting(raw), "budget", "steps", "schedule", "lr", "seed"]
    raw = raw[~raw[key].astype(str).duplicated()]  # one run per raw competitor: averaging does not change training
    rivals = []
    for kind in sorted(set(kinds.values())):
        mine = runs[runs["id"].map(kinds.get) == kind].drop(columns=[c for c in runs.columns if c.startswith(AVERAGE)])
        if mine.empty:
            continue
        mine = mine.copy()
        for column in list(mine.columns):
            if f"{column}_{kind}" in mine.columns:  # final_eval_loss <- final_eval_loss_ema, final_eval_error too
                mine[column] = mine[f"{column}_{kind}"]
        mine["schedule"] = mine["schedule"].astype(str) + f"+{kind}"
        if identical.DIGEST in mine.columns:  # not the same competitor as its schedule's own weights
            mine[identical.DIGEST] = mine[identical.DIGEST].map(lambda d: None if d is None else f"{d}+{kind}")
        rivals.append(mine)
    return pd.concat([raw, *rivals], ignore_index=True)
