"""Finding the branch trees (schedsweep.sharing.branching.find) and absolute warm-up in the schedule library."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedsweep import schedules
from schedsweep.sharing import branching
from schedsweep.errors import ScheduleError
from schedsweep.plan.grid import Run, make_plan

from helpers import LOG, WSD, run





def lrs(r: Run) -> np.ndarray:
    return np.asarray(schedules.values(r.spec["schedule"], r.spec["steps"]))


# ---- absolute warm-up ----------------------------------------------------------------------------------


def test_warmup_in_steps_is_the_same_length_at_every_budget() -> None:
    for total in (60, 100, 1000):
        f = schedules.values({"shape": "constant", "warmup": 10}, total)
        assert f[:11] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], abs=1e-15)
        assert f[10:] == [1.0] * (total - 10)
    # A fraction scales with the budget: 10% is 6 steps of 60, 100 of 1000.
    assert schedules.values({"shape": "constant", "warmup": 0.1}, 60)[6] == 1.0
    assert schedules.values({"shape": "constant", "warmup": 0.1}, 1000)[6] == pytest.approx(0.06)


def test_wsd_with_warmup_in_steps_matches_the_table() -> None:
    f = schedules.values({**WSD, "warmup": 10}, 100)  # stable 70 steps, decay over the last 20
    assert f[0] == 0.0 and f[5] == 0.5 and f[10] == 1.0 and f[80] == 1.0
    assert f[81] == pytest.approx(0.95) and f[99] == pytest.approx(0.05)


@pytest.mark.parametrize("warmup, message", [
    (100, "warmup = 100 steps is the whole budget"),
    (50.0, "warmup = 50.0 is not allowed; warmup must be a fraction of the budget in [0, 1) or a whole number of steps >= 1"),
    (-3, "warmup = -3 is not allowed"),
    (1.0, "warmup = 1.0 is not allowed"),
])
def test_bad_warmup_is_named(warmup: Any, message: str) -> None:
    with pytest.raises(ScheduleError) as error:
        schedules.check({"shape": "cosine", "warmup": warmup}, 100, "x")
    assert message in str(error.value)


def test_warmup_in_steps_and_a_decay_that_overrun_the_budget_are_reported() -> None:
    with pytest.raises(ScheduleError, match="warmup rounds to 90 steps, decay = 0.2 rounds to 20 steps, 110 in all"):
        schedules.check({**WSD, "warmup": 90}, 100, "wsd")


# ---- trees: exact values ---------------------------------------------------------------------------------


def test_wsd_budgets_fork_where_each_cooldown_starts() -> None:
    runs = [run(WSD, t) for t in (100, 250, 500, 1000)]
    sharing = branching.find(runs)
    (tree,) = sharing.trees
    assert tree.trunk == runs[3].id and tree.steps == 1000
    # Linear decay's first value is 1 (x = 0), so the prefix runs one step into each cooldown: T - D + 1.
    assert [(b.run, b.of, b.step) for b in tree.branches] == [
        (runs[2].id, runs[3].id, 401), (runs[1].id, runs[3].id, 201), (runs[0].id, runs[3].id, 81)]
    assert tree.forks == (81, 201, 401)
    assert sharing.total_steps == 1850 and sharing.trained_steps == 1000 + 99 + 49 + 19
    assert sharing.line() == "1 branch tree shares its prefix: 1,167 of 1,850 steps trained (-37%)"
    assert sharing.forks == {runs[3].id: (81, 201, 401)}


def test_constant_branches_one_step_before_each_end_and_seeds_make_separate_trees() -> None:
    constant = {"shape": "constant"}
    runs = [run(constant, t, seed) for seed in (0, 1) for t in (40, 100)]
    sharing = branching.find(runs)
    assert len(sharing.trees) == 2
    assert sorted(b.step for t in sharing.trees for b in t.branches) == [39, 39]  # trains its last step itself
    assert sharing.trained_steps == 2 * (100 + 1)


def test_a_step_schedule_shares_up_to_the_shorter_runs_first_milestone() -> None:
    runs = [run({"shape": "step", "milestones": [0.5, 0.75], "gamma": 0.1}, t) for t in (1000, 500)]
    (tree,) = branching.find(runs).trees
    assert [(b.of, b.step) for b in tree.branches] == [(runs[0].id, 250)]


def test_fraction_warmup_stateful_and_cosine_cannot_share_and_say_why() -> None:
    runs = [run({**WSD, "warmup": 0.05}, t) for t in (100, 200, 400)]
    runs += [run({"shape": "plateau"}, t) for t in (100, 200)]
    runs += [run({"shape": "cosine"}, t) for t in (100, 200)]
    runs += [run({"shape": "linear"}, 300)]  # alone: nothing to share, not a failure to share
    sharing = branching.find(runs)
    assert sharing.trees == ()
    assert sharing.unshared == {branching.FRACTION_WARMUP: 2, branching.STATEFUL: 2, branching.DIFFERENT: 1}
    assert sharing.trained_steps == sharing.total_steps == 700 + 300 + 300 + 300
    assert sharing.line().startswith("no shared prefixes; 5 runs could not share (")


def test_different_log_settings_do_not_share() -> None:
    # The inherited rows must be the rows the branch would log itself: evaluation steps included.
    a, b = run(WSD, 1000), run(WSD, 500, log={**LOG, "eval_every": 7})
    assert branching.find([a, b]).trees == ()


# ---- trees: properties -----------------------------------------------------------------------------------

SPECS = st.sampled_from([
    {"shape": "wsd", "warmup": 5, "decay": 0.2},
    {"shape": "wsd", "warmup": 5, "decay": 0.3, "decay_shape": "1-sqrt"},
    {"shape": "wsd", "warmup": 0.1, "decay": 0.2},
    {"shape": "constant", "warmup": 3},
    {"shape": "cosine"},
    {"shape": "infinite", "warmup": 4},
    {"shape": "step", "milestones": [0.5, 0.75]},
    {"shape": "join", "warmup": 4, "pieces": [{"shape": "constant", "until": 0.6}, {"shape": "cosine"}]},
    {"shape": "plateau"},
])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(SPECS, st.integers(20, 400), st.integers(0, 1)), min_size=1, max_size=10))
def test_every_tree_is_sound_and_maximal(points: list[tuple[dict[str, Any], int, int]]) -> None:
    runs = list({r.id: r for r in (run(s, t, seed) for s, t, seed in points)}.values())
    by_id = {r.id: r for r in runs}
    sharing = branching.find(runs)
    branches = sharing.branches
    trunks = {t.trunk for t in sharing.trees}
    assert not trunks & set(branches)  # a trunk trains from step 0
    assert len(branches) == sum(len(t.branches) for t in sharing.trees)  # every run in at most one tree
    fork_of = {b.run: b.step for b in branches.values()}
    for b in branches.values():
        me, parent = by_id[b.run], by_id[b.of]
        assert me.spec | {"steps": 0} == parent.spec | {"steps": 0} and me.log == parent.log
        assert parent.spec["steps"] >= me.spec["steps"] and b.steps == me.spec["steps"]
        assert branching.MIN_SHARED * b.steps <= b.step <= b.steps - 1
        assert np.array_equal(lrs(me)[:b.step], lrs(parent)[:b.step])  # exactly the same LRs: a shared prefix
        assert b.step > fork_of.get(b.of, 0)  # the parent has trained past its own fork when it writes this one
        assert me.spec["schedule"]["shape"] != "plateau"
        # No longer run of the group shares a longer prefix (the planner picks the best parent).
        for other in runs:
            if other.id != me.id and other.spec["steps"] >= me.spec["steps"] and other.spec | {"steps": 0} == me.spec | {"steps": 0}:
                assert min(branching.prefix_length(lrs(me), lrs(other)), b.steps - 1) <= b.step
    assert sharing.total_steps == sum(r.spec["steps"] for r in runs)
    assert sharing.trained_steps == sharing.total_steps - sum(b.step for b in branches.values())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=0, max_size=30), st.lists(st.floats(-1, 1), min_size=0, max_size=30))
def test_prefix_length_is_the_first_difference(a: list[float], b: list[float]) -> None:
    k = branching.prefix_length(np.array(a), np.array(b))
    assert a[:k] == b[:k]
    assert k == min(len(a), len(b)) or a[k] != b[k]


# ---- the plan ---------------------------------------------------------------------------------------------


def test_share_prefix_false_keeps_the_run_ids_and_shares_nothing() -> None:
    args = ["schedule=wsd", "schedule.warmup=20", "budget=0.25,1.0", "task=classifier"]
    on, off = make_plan(args), make_plan([*args, "share_prefix=false"])
    assert on.share_prefix and not off.share_prefix
    assert [r.id for r in on.runs] == [r.id for r in off.runs]
    assert branching.plan_trees(off.runs, off.share_prefix).trees == () and len(branching.plan_trees(on.runs, on.share_prefix).trees) == 1


@pytest.mark.parametrize("args, message", [
    (["share_prefix=maybe"], "share_prefix must be true or false; got 'maybe'"),
    (["share_prefix=true,false"], "'share_prefix' cannot be swept"),
])
@pytest.mark.slow
def test_bad_share_prefix_is_one_message(args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "schedsweep", "launch", *args, "--dry-run"], capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_dry_run_shows_the_trees_and_the_steps_saved() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "schedsweep", "launch", "schedule=wsd", "schedule.warmup=20", "budget=0.1,0.5,1.0",
         "full_steps=300", "seed=0,1", "--dry-run", "-v"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    # Budgets of 30, 150 and 300 steps: forks at 25 and 121; 2 x (300 + 5 + 29) of 2 x 480 trained.
    assert "2 branch trees share their prefixes: 668 of 960 steps trained (-30%)" in proc.stdout
    assert proc.stdout.count("forks at 25, 121") == 2
    assert proc.stdout.count("from step 121, trains 29") == 2 and proc.stdout.count("from step 25, trains 5") == 2
