"""`prune_lr=ETA`: successive halving over the peak-LR axis, decided on the sweep folder between rungs.

Per (setting, schedule) the budgets are rungs, smallest first (by steps). Every LR runs the smallest
budget. Once every run of a rung (each kept LR, each seed) has settled, the LRs that go on to the next
budget are those `prune_rule` keeps (schedsweep.results.pruning.kept_next), ranked by the mean over seeds of
the sweep's metric (a diverged LR last): `halve` (the default) the best ceil(n / ETA), at least 1;
`neighbours` the best ceil(n / ETA), at least 2, and the best's neighbours so that the best can move one
grid step; `extrap` every LR for the two smallest budgets, then ranked on its metric extrapolated to the
next budget (the README gives each rule's figures). Every larger budget of the others gets status `pruned` (schedsweep.sweep.status): never
trained, never retried, skipped by a relaunch, listed by the report as "pruned at budget b". Only runs that
have not finished are pruned: a run already done (an earlier, unpruned launch) keeps its result.

Shared prefixes (constant, WSD: schedsweep.sharing): a trunk is the longest budget's run, yet the smaller
budgets branch from its forks. `limit` lets a held trunk train up to the fork its runnable branches need and
no further (a hold, schedsweep.sharing.holds); once that budget is decided, a kept LR's trunk resumes from its
checkpoint there to the next fork (the same run as unpruned, bit for bit on CPU), and a pruned LR's trunk
stays stopped at the fork, `pruned`.

`decide` makes every decision the folder allows and returns the runs still *held* (a rung below them has
unsettled runs). The launcher (schedsweep.cli.sweeps) alternates: decide, train what is not held, until
nothing is held. Locally that is one waiting launch; on Slurm a waiting launch does the same, and without
waiting each relaunch of the same command decides what the finished rungs allow and queues the next rung.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from schedsweep.results import pruning
from schedsweep.sharing import forks, holds
from schedsweep.sweep import store
from schedsweep.sweep.run_folder import RunFolder
from schedsweep.sweep.status import DIVERGED, DONE, INTERRUPTED, OPEN, PENDING, PRUNED, RESULTS

PREFIX = "pruned at budget "


def decide(sweep_dir: Path, runs: Any, metric: str, eta: int, rule: str = pruning.DEFAULT_RULE) -> set[str]:
    """Write `pruned` for every run the settled rungs rule out; the ids of the runs still held. `runs`, `metric`:
    the sweep's runs and the column they are ranked by (Sweep.ranked_runs)."""
    from schedsweep.results import report as reporting
    from schedsweep.results.compare import budget_label

    runs = runs.assign(_metric=runs[metric].astype(float))
    setting = reporting.setting_columns(runs)
    held: set[str] = set()
    for _, group in runs.groupby([runs[c].map(repr) for c in [*setting, "schedule"]], sort=False):
        rungs = sorted(group["steps"].unique())
        alive = set(group.loc[group["steps"] == rungs[0], "lr"])
        history: dict[float, list[tuple[int, float]]] = {}  # lr -> (steps, mean) at each rung it ran
        for i, steps in enumerate(rungs[:-1]):
            rung = group[(group["steps"] == steps) & group["lr"].isin(alive)]
            if not rung["status"].isin([*RESULTS, PRUNED]).all():
                held.update(group.loc[(group["steps"] > steps) & (group["status"] == PENDING), "id"])
                break
            for lr, part in rung.groupby("lr"):
                history.setdefault(float(lr), []).append((int(steps), _mean(part)))
            ran = {lr: history[lr] for lr in map(float, rung["lr"].unique())}
            alive = set(pruning.kept_next(ran, eta, rule, i, int(rungs[i + 1]))) if ran else set()
            label = budget_label(rung["budget"].iloc[0]) if len(rung) else "?"
            out = group[(group["steps"] > steps) & ~group["lr"].isin(alive) & (group["status"] == PENDING)]
            for run_id in dict.fromkeys(out["id"]):
                run = RunFolder.of(sweep_dir, run_id)
                run.path.mkdir(parents=True, exist_ok=True)
                done = run.status().steps_done if run.has_status() else 0  # a trunk: its fork step
                run.write_status(store.RunStatus(PRUNED, steps_done=done, error=f"{PREFIX}{label}"))
    return held


def limit(sweep_dir: Path, runs: Any, held: set[str]) -> tuple[set[str], int, set[str]]:
    """After `decide`: release the held parents (trunks) whose forks a run of this round needs, each with a hold at
    the latest such fork step, and clear every other hold. (The ids still held, how many runs this round trains,
    the released ones that stop at a hold: they too have larger budgets still to decide.)
    `runs`: the sweep's runs (id); their statuses are read again, as `decide` has just pruned some."""
    held = set(held)
    ids = [i for i in dict.fromkeys(runs["id"]) if i not in held]
    todo = [i for i in ids if RunFolder.of(sweep_dir, i).status().status in (*OPEN, INTERRUPTED)]
    trains = len(todo)
    stops: dict[str, int] = {}
    while todo:  # a released parent may itself be a branch whose fork its own held parent must write
        released = []
        for run_id in todo:
            run = RunFolder.of(sweep_dir, run_id)
            branch = run.branch()
            if not branch or run.checkpoint.exists():
                continue
            parent, step = branch["of"], int(branch["step"])
            if parent not in held or (RunFolder.of(sweep_dir, parent).fork(step) / forks.CHECKPOINT).is_file():
                continue
            if parent not in stops:
                released.append(parent)
            stops[parent] = max(step, stops.get(parent, 0))
        todo = released
    for parent, step in stops.items():
        holds.write(RunFolder.of(sweep_dir, parent).path, step, "prune_lr: its larger budgets are not decided yet")
    holds.clear_all(sweep_dir, keep=set(stops))
    return held - set(stops), trains + len(stops), set(stops)


def _mean(part: Any) -> float:
    """The LR's mean over its seeds (lower is better); +inf when one diverged or none has a result."""
    if (part["status"] == DIVERGED).any():
        return math.inf
    done = part.loc[part["status"] == DONE, "_metric"].dropna()
    return float(done.mean()) if len(done) else math.inf


def plan_line(planned: Any, eta: int, rule: str) -> str:
    """A dry run's promise: at most how many of the planned runs and steps prune_lr trains (before any result,
    from each (setting, schedule)'s LRs, budgets and seeds; schedsweep.results.pruning.most_kept)."""
    not_setting = {"budget", "seed", "lr_mult"}
    groups: dict[Any, dict[int, dict[float, int]]] = {}  # (setting, schedule) -> steps -> lr -> runs (seeds)
    for run in planned:
        lab = run.labels
        axes = tuple(sorted((k, repr(v)) for k, v in lab["axes"].items() if k not in not_setting and not k.endswith(".lr")))
        rungs = groups.setdefault((lab["task"], lab["optimizer"], lab["schedule"], axes), {})
        lrs = rungs.setdefault(int(lab["steps"]), {})
        lrs[lab["lr"]] = lrs.get(lab["lr"], 0) + 1
    runs = steps = 0
    for rungs in groups.values():
        order = sorted(rungs)
        counts = pruning.most_kept(len(rungs[order[0]]), len(order), eta, rule)
        for n, rung in zip(counts, order):
            seeds = max(rungs[rung].values())
            runs += min(n, len(rungs[rung])) * seeds
            steps += min(n, len(rungs[rung])) * seeds * rung
    total_steps = sum(int(r.labels["steps"]) for r in planned)
    return (f"prune_lr={eta} (prune_rule={rule}): trains at most {runs} of the {len(planned)} runs, {steps:,} of "
            f"{total_steps:,} steps ({100 * steps / max(total_steps, 1):.0f}%) before prefix sharing; which LRs go on is "
            "decided as each budget's runs finish")


def pruned_notes(runs: Any) -> list[str]:
    """One report note listing the pruned (setting, schedule, LR)s and the budget each was pruned at."""
    pruned = runs[runs["status"] == PRUNED]
    if pruned.empty:
        return []
    from schedsweep.results import report as reporting

    setting = reporting.setting_columns(runs)
    items = {}
    for row in pruned.to_dict("records"):
        key = " ".join(str(row[c]) for c in setting) + f" {row['schedule']} lr {row['lr']:g}"
        items[key] = str(row.get("error") or PREFIX + "?")
    return [f"prune_lr: {len(pruned)} run(s) pruned, never trained (their LR lost at a smaller budget): "
            + "; ".join(f"{k}: {v}" for k, v in items.items()) + "."]
