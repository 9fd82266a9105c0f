"""What a reader must know before trusting a ranking: degenerate problems and best LRs at a grid's edge.

A problem (one setting at one budget) is *degenerate* when its ranking cannot say much:

* **short**: its runs have fewer than MIN_STEPS optimizer updates. The shortest phase of a shipped
  schedule is 5% of the budget (WSD's warm-up); below 20 steps it rounds to 0 steps, so schedules lose
  the shape they are named for (WSD is constant step for step) and the ranking follows how much LR
  each one spends. The issue's REX protocol asks the same: the 1% budget is at least 20 optimizer
  steps.
* **within noise**: every schedule with a finite result is in the best group (none is significantly
  worse than the winner, schedsweep.results.significance), with at least two distinct competitors
  and at least one test made.

Degenerate problems stay in every table (dropping them would change what a table averages over
silently); the cross-setting tables say how many of their problems are degenerate, and `problems`
lists them (`report --table problems`).

A best peak LR at the lowest or highest LR a schedule ran with (`lr_edge`, with >= 2 LRs) means its
LR is not tuned: the true best may lie beyond the grid. `edge_note` lists those cells in one note.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MIN_STEPS = 20  # 5% (the shortest shipped phase) of 20 steps is 1 step
SHORT, NOISE = "short", "within noise"


def problems(ranked: pd.DataFrame) -> pd.DataFrame:
    """One row per problem: setting columns, budget, steps, schedules (distinct competitors with a
    finite result), winner, best_group (how many distinct schedules are in it), tested (tests made),
    degenerate ("short", "within noise", both joined by "; ", or "")."""
    setting = list(ranked.columns[: list(ranked.columns).index("budget")])
    keys = [*setting, "budget", "steps"]
    rows: list[dict[str, Any]] = []
    for key, part in ranked.groupby(keys, sort=False, dropna=False):
        own = part[part["same_as"].fillna("").eq("")] if "same_as" in part.columns else part
        finite = own[np.isfinite(own["mean"].astype(float))]
        group = finite["best_group"].astype(bool) if "best_group" in finite.columns else pd.Series(dtype=bool)
        tested = int(finite["p_test"].ne("").sum()) if "p_test" in finite.columns else 0
        steps = int(part["steps"].iloc[0])
        reasons = [SHORT] if steps < MIN_STEPS else []
        if len(finite) >= 2 and tested and bool(group.all()):
            reasons.append(NOISE)
        winners = finite[finite["rank"] == 1]["schedule"].astype(str)
        rows.append({**dict(zip(keys, key)), "schedules": len(finite), "winner": ", ".join(winners),
                     "best_group": int(group.sum()), "tested": tested, "degenerate": "; ".join(reasons)})
    frame = pd.DataFrame(rows, columns=[*keys, "schedules", "winner", "best_group", "tested", "degenerate"])
    frame["budget"] = pd.Series([r["budget"] for r in rows], dtype=object)
    return frame


def count_note(table: pd.DataFrame) -> str:
    """'N problems, K of them degenerate (M short, J within noise)': what a cross-setting table averages over."""
    n = len(table)
    bad = table[table["degenerate"].ne("")]
    if bad.empty:
        return f"{n} problems, none degenerate"
    short = int(bad["degenerate"].str.contains(SHORT).sum())
    noise = int(bad["degenerate"].str.contains(NOISE).sum())
    return f"{n} problems, {len(bad)} of them degenerate ({short} under {MIN_STEPS} steps, {noise} all within noise)"


def degenerate_note(table: pd.DataFrame, label: Any) -> list[str]:
    """One note listing the degenerate problems (they stay in every table)."""
    bad = table[table["degenerate"].ne("")]
    if bad.empty:
        return []
    setting = list(table.columns[: list(table.columns).index("budget")])
    cells = [f"{' '.join(str(r[c]) for c in setting)} {label(r['budget'])} ({r['steps']} steps: {r['degenerate']})"
             for _, r in bad.iterrows()]
    return [f"Degenerate problems, {len(bad)} of {len(table)} (kept in every table; under {MIN_STEPS} steps a 5% "
            f"phase rounds to 0 steps, or every schedule is within noise of the winner): " + "; ".join(cells) + "."]


def lr_edges(frame: pd.DataFrame, cells: pd.DataFrame, pruned: pd.DataFrame | None = None) -> pd.Series:
    """"low" / "high" where a cell's best LR is the lowest / highest of the >= 2 LRs it ran with, else "".
    `pruned`: (_cid, lr) of LRs prune_lr ruled out at a smaller budget; they count as tried."""
    tried = frame[["_cid", "lr"]] if pruned is None else pd.concat([frame[["_cid", "lr"]], pruned], ignore_index=True)
    lrs = tried.groupby("_cid")["lr"].agg(["min", "max", "nunique"]).reindex(cells["_cid"])
    best = cells["best_lr"].to_numpy()
    several = lrs["nunique"].to_numpy() >= 2
    edge = np.select([several & (best == lrs["min"].to_numpy()), several & (best == lrs["max"].to_numpy())],
                     ["low", "high"], "")
    return pd.Series(edge, index=cells.index, dtype=object)


def edge_note(ranked: pd.DataFrame, label: Any) -> list[str]:
    """One note listing the cells whose best peak LR is at the edge of the LRs they ran with."""
    if "lr_edge" not in ranked.columns:
        return []
    edge = ranked[ranked["lr_edge"].fillna("").ne("")]
    if edge.empty:
        return []
    setting = list(ranked.columns[: list(ranked.columns).index("budget")])
    cells = [f"{' '.join(str(r[c]) for c in setting)} {label(r['budget'])} {r['schedule']} ({r['lr_edge']})"
             for _, r in edge.iterrows()]
    n_high = int(edge["lr_edge"].eq("high").sum())
    return [f"Best peak LR at the edge of its grid in {len(edge)} of {len(ranked)} cells ({n_high} at the top, "
            f"{len(edge) - n_high} at the bottom): those schedules are not tuned; extend their LR grid: "
            + "; ".join(cells) + "."]


def trial_note(runs: pd.DataFrame) -> list[str]:
    """One note per schedule whose runs spent steps on trials (AutoLRS): ranked at equal total steps, and
    its kept (stage) steps alone, labelled, not ranked."""
    if "trial_steps" not in runs.columns or not (runs["trial_steps"] > 0).any():
        return []
    notes = []
    for schedule, part in runs[runs["trial_steps"] > 0].groupby("schedule", sort=True):
        total, trials = int(part["steps_done"].sum()), int(part["trial_steps"].sum())
        notes.append(f"{schedule}: {trials} of its {total} steps ({100 * trials / total:.0f}%) were trials that "
                     f"rewound; it is ranked at equal total steps (its stage steps alone: {total - trials}).")
    return notes
