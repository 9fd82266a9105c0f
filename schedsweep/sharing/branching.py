"""Shared prefixes: runs that agree on their first k steps are trained once up to k, then fork.

Two runs share a prefix of k steps when their specs are equal except for the budget (`steps`), their
log settings are equal (so the inherited metric rows are the rows the run would have logged), and their
LR multipliers are exactly equal over updates 0..k-1. The multipliers are computed with
:mod:`schedsweep.schedules`, never guessed from a shape's name: WSD with a warm-up in steps agrees up to
its cooldown, a step schedule up to the shorter run's first milestone, a constant schedule everywhere,
cosine nowhere.
Stateful schedules (plateau, autolrs) never branch: their LR depends on the losses, not on the step alone.

The planner forms trees. Within a group of runs that differ only in budget, runs are taken longest
first; each run forks from the longer run it shares the longest prefix with (ties: the longer one), at
``k = min(shared prefix, T - 1)`` (the run trains at least its last step itself). The longest run, the
trunk, trains from step 0. A parent writes a fork (its checkpoint and its metric rows at step k) when it
reaches k; the branch starts from a copy of it, with those rows marked ``inherited``, and trains k..T-1
as a resumed run would: the same run as one trained alone, bit for bit on CPU.

A fork saves less than it costs (a checkpoint written and read, the data stream replayed to k) when k
is a small part of the run, so a run branches only when it inherits at least MIN_SHARED of its steps.
"""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from schedsweep import schedules

MIN_SHARED = 0.1  # a fork is kept when it saves at least 10% of the branch's steps

STATEFUL = "stateful schedule (LR driven by evaluation losses)"
FRACTION_WARMUP = "warm-up as a fraction of the budget (give schedule.warmup in steps, e.g. 50)"
DIFFERENT = "LR sequence departs from every longer run's within the first 10% of steps"


@dataclass(frozen=True)
class Branch:
    """Run `run` starts from run `of`'s state before update `step`: it inherits updates 0..step-1."""

    run: str
    of: str
    step: int
    steps: int  # the branch's own budget T: it trains T - step updates itself


@dataclass(frozen=True)
class Tree:
    """A trunk trained from step 0 and every run that forks from it or from one of its branches."""

    trunk: str
    steps: int
    branches: tuple[Branch, ...]  # longest first

    @property
    def forks(self) -> tuple[int, ...]:
        return tuple(sorted({b.step for b in self.branches}))


@dataclass(frozen=True)
class Sharing:
    """The trees of a plan and what they save."""

    trees: tuple[Tree, ...]
    total_steps: int  # updates of every run trained from step 0
    trained_steps: int  # updates trained with shared prefixes trained once
    unshared: dict[str, int] = field(default_factory=dict)  # reason -> runs that could not share

    # Cached: launch asks both once per run (record_keys), and rebuilding them each time made writing a
    # 10,000-run sweep folder quadratic (116 of 142 s under a profiler).
    @functools.cached_property
    def branches(self) -> dict[str, Branch]:
        return {b.run: b for t in self.trees for b in t.branches}

    @functools.cached_property
    def forks(self) -> dict[str, tuple[int, ...]]:
        """Run id -> the steps at which it writes a fork for its branches."""
        steps: dict[str, set[int]] = defaultdict(set)
        for b in self.branches.values():
            steps[b.of].add(b.step)
        return {run: tuple(sorted(s)) for run, s in steps.items()}

    def line(self, why: bool = True) -> str:
        """'4 branch trees share their prefixes: 3,700 of 7,800 steps trained (-47%)', plus what could not share
        (with `why`, the reasons; else their count)."""
        if self.trees:
            saved = 1 - self.trained_steps / self.total_steps
            text = (f"{len(self.trees)} branch {'trees share their prefixes' if len(self.trees) > 1 else 'tree shares its prefix'}: "
                    f"{self.trained_steps:,} of {self.total_steps:,} steps trained (-{saved:.0%})")
        else:
            text = "no shared prefixes"
        if self.unshared and why:
            reasons = "; ".join(f"{n} {reason}" for reason, n in sorted(self.unshared.items()))
            text += f"; {sum(self.unshared.values())} runs could not share ({reasons})"
        elif self.unshared:
            text += f"; {sum(self.unshared.values())} runs train from step 0 (-v: why, and the trees)"
        return text


def prefix_length(a: np.ndarray, b: np.ndarray) -> int:
    """Number of leading positions where `a` and `b` are exactly equal (over the shorter length)."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


def _group_key(run: Any) -> str:
    spec = {k: v for k, v in run.spec.items() if k != "steps"}
    return json.dumps([spec, run.log], sort_keys=True, separators=(",", ":"))


def _kept_key(run: Any) -> str:
    """Runs of an earlier launch a new run may branch from: equal but for the budget and the schedule (whose
    LR multipliers are then compared: a new cooldown length of WSD branches from the same stable phase)."""
    spec = {k: v for k, v in run.spec.items() if k not in ("steps", "schedule")}
    return json.dumps([spec, run.log], sort_keys=True, separators=(",", ":"))


def find(runs: Iterable[Any]) -> Sharing:
    """The branch trees of `runs` (plan.Run or anything with id, spec and log): see the module docstring."""
    groups: dict[str, list[Any]] = defaultdict(list)
    for run in runs:
        groups[_group_key(run)].append(run)
    trees: list[Tree] = []
    unshared: Counter[str] = Counter()
    total = trained = 0
    for members in groups.values():
        members.sort(key=lambda r: -int(r.spec["steps"]))
        total += sum(int(r.spec["steps"]) for r in members)
        built = [schedules.build(r.spec["schedule"], int(r.spec["steps"])) for r in members]
        if schedules.stateful(built[0]):  # its LR is not a function of the step alone
            trained += sum(int(r.spec["steps"]) for r in members)
            if len(members) > 1:
                unshared[STATEFUL] += len(members)
            continue
        lrs = [np.asarray(f(np.arange(int(r.spec["steps"]), dtype=np.float64))) for f, r in zip(built, members)]
        root: dict[str, str] = {}
        branches: dict[str, list[Branch]] = defaultdict(list)
        for i, run in enumerate(members):
            steps = int(run.spec["steps"])
            best, parent = 0, None
            for j in range(i):  # longest first, so ties go to the longer run
                k = min(prefix_length(lrs[i], lrs[j]), steps - 1)
                if k > best:
                    best, parent = k, members[j]
            if parent is None or best < MIN_SHARED * steps:
                root[run.id] = run.id
                trained += steps
                if i > 0:
                    unshared[_reason(run)] += 1
                continue
            root[run.id] = root[parent.id]
            branches[root[run.id]].append(Branch(run.id, parent.id, best, steps))
            trained += steps - best
        trees += [Tree(r.id, int(r.spec["steps"]), tuple(branches[r.id])) for r in members if branches.get(r.id)]
    return Sharing(tuple(trees), total, trained, dict(unshared))


def _reason(run: Any) -> str:
    warmup = run.spec["schedule"].get("warmup", 0)
    if isinstance(warmup, float) and warmup > 0:
        return FRACTION_WARMUP
    return DIFFERENT


def plan_trees(runs: Sequence[Any], share_prefix: bool) -> Sharing:
    """The trees of `runs`, or none with share_prefix=false (every run trains from step 0)."""
    if share_prefix:
        return find(runs)
    total = sum(int(r.spec["steps"]) for r in runs)
    return Sharing((), total, total)


@dataclass(frozen=True)
class Kept:
    """New runs that branch from forks an earlier launch kept, and those that could have but found none."""

    branches: dict[str, Branch]  # run id -> its branch from an earlier run's fork on disk
    gone: int  # runs that share a prefix with an earlier run whose forks are removed: they train from step 0

    def line(self) -> str:
        parts = []
        if self.branches:
            saved = sum(b.step for b in self.branches.values())
            parts.append(f"{len(self.branches)} new runs branch from forks kept by an earlier launch "
                         f"({saved:,} steps not trained again)")
        if self.gone:
            parts.append(f"{self.gone} share a prefix with earlier runs but find no fork of theirs kept to start from "
                         "(forks are removed once all their branches are done): they train from step 0")
        return "; ".join(parts)


def from_kept(fresh: Sequence[Any], sharing: Sharing, earlier: Sequence[tuple[Any, Sequence[int]]]) -> Kept:
    """Fresh runs that train from step 0 in `sharing` but share a prefix with a run of an earlier launch
    (`earlier`: (run, the steps of its forks on disk); any schedule, compared by its LR multipliers, as a new
    cooldown length branches from a kept WSD trunk): each branches from the latest fork it can use
    (k <= its shared prefix, k <= T - 1, k >= MIN_SHARED x T, and no later than the forks it writes for
    its own new branches); with none kept it is counted as `gone`."""
    groups: dict[str, list[tuple[Any, Sequence[int]]]] = defaultdict(list)
    for old, steps in earlier:
        groups[_kept_key(old)].append((old, steps))
    branches: dict[str, Branch] = {}
    lrs: dict[str, np.ndarray | None] = {}  # an earlier run's LR multipliers, None for a stateful schedule
    gone = 0
    for run in fresh:
        candidates = groups.get(_kept_key(run))
        if run.id in sharing.branches or not candidates:
            continue
        steps = int(run.spec["steps"])
        f = schedules.build(run.spec["schedule"], steps)
        if schedules.stateful(f):
            continue
        mine = np.asarray(f(np.arange(steps, dtype=np.float64)))
        best, parent, shares = 0, None, False
        own = min(sharing.forks.get(run.id, (steps,)))  # it must still pass the forks of its own new branches
        for old, forks in candidates:
            if old.id not in lrs:
                t = int(old.spec["steps"])
                g = schedules.build(old.spec["schedule"], t)
                lrs[old.id] = None if schedules.stateful(g) else np.asarray(g(np.arange(t, dtype=np.float64)))
            theirs = lrs[old.id]
            if theirs is None:
                continue
            k = min(prefix_length(mine, theirs), steps - 1, own)
            shares = shares or k >= MIN_SHARED * steps
            usable = [s for s in forks if MIN_SHARED * steps <= s <= k]
            if usable and max(usable) > best:
                best, parent = max(usable), old
        if parent is not None:
            branches[run.id] = Branch(run.id, parent.id, best, steps)
        elif shares:
            gone += 1
    return Kept(branches, gone)


def record_keys(sharing: Sharing, run_id: str) -> dict[str, Any]:
    """What run.json says about the run's place in a tree: `branch` {of, step} and/or `forks` [steps]."""
    keys: dict[str, Any] = {}
    branch = sharing.branches.get(run_id)
    if branch is not None:
        keys["branch"] = {"of": branch.of, "step": branch.step}
    forks = sharing.forks.get(run_id)
    if forks:
        keys["forks"] = list(forks)
    return keys
