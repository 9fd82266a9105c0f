"""The sweep's ETA: from planned steps and measured time per step, not from a count of runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedsweep import eta, settings, store
from schedsweep.plan import make_plan
from schedsweep.sweep import Sweep


def test_values() -> None:
    steps = {"a": 100, "b": 1000, "c": 100, "d": 1000}
    assert eta.steps_done(steps, {"a": "running", "b": "running"}) == 550  # each running run taken as half done
    assert eta.remaining_s(0, 2200, elapsed_s=5.0) is None  # nothing measured yet
    # One 100-step run done in 6 s while the 1000-step one is half done: 600 steps took 6 s, 1600 are left.
    done = eta.steps_done(steps, {"a": "done", "b": "running"})
    assert done == 600 and eta.remaining_s(done, 2200 - done, elapsed_s=6.0) == pytest.approx(16.0)
    assert eta.remaining_s(2200, 0, elapsed_s=9.0) == 0.0
    assert eta.clock(None) == "?" and eta.clock(3725.4) == "1:02:05" and eta.clock(59.6) == "0:01:00"


def test_a_count_of_runs_would_be_off_by_the_budgets_ratio() -> None:
    """Short runs first: 5 of 10 runs done is 1/11 of the work, not half."""
    steps = {f"r{i}": 100 if i < 5 else 1000 for i in range(10)}
    done = eta.steps_done(steps, {f"r{i}": "done" for i in range(5)})
    assert eta.remaining_s(done, 5500 - done, elapsed_s=5.0) == pytest.approx(50.0)  # a run count says 5


def test_which_runs_finished_counts_not_their_place_in_the_queue() -> None:
    """Two workers: the long first run is still going when the two short ones behind it are done."""
    steps = {"long": 1000, "short1": 100, "short2": 100, "next": 1000}
    statuses = {"long": "running", "short1": "done", "short2": "done", "next": "running"}
    assert eta.steps_done(steps, statuses) == 200 + 500 + 500  # not 1000 + 100 for "the first two finished"


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=50), st.floats(1e-5, 1.0), st.data())
def test_exact_for_a_serial_queue_at_a_constant_time_per_step(steps: list[int], per_step: float, data: st.DataObject) -> None:
    finished = data.draw(st.integers(1, len(steps)))
    planned = {str(i): n for i, n in enumerate(steps)}
    done = eta.steps_done(planned, {str(i): "done" for i in range(finished)})
    left = eta.remaining_s(done, sum(steps) - done, per_step * sum(steps[:finished]))
    assert left == pytest.approx(per_step * sum(steps[finished:]), rel=1e-9, abs=1e-9)


def test_the_estimate_is_timed_from_the_first_finished_run() -> None:
    """Workers take 5 s to start (torch imports), then each 10-step run takes 1 s, one at a time."""
    runs = [f"r{i}" for i in range(10)]
    estimate = eta.Estimate({run: 10 for run in runs})

    def at(finished: int) -> dict[str, str]:
        return {run: "done" if i < finished else "running" if i == finished else "pending" for i, run in enumerate(runs)}

    assert estimate.left_s(at(0), now=3.0) is None
    assert estimate.left_s(at(1), now=6.0) is None  # the clock starts here
    # 7.5 runs left (the one running is taken to be half done), at the 1 s per run measured since.
    assert estimate.left_s(at(2), now=7.0) == pytest.approx(7.5)
    assert estimate.left_s(at(5), now=10.0) == pytest.approx(4.5)
    # Timed from the launch instead, the 5 s of start-up would be spread over every step left: 21 s, not 7.5.
    assert eta.remaining_s(25, 75, elapsed_s=7.0) == pytest.approx(21.0)


def test_a_study_queue_spreads_each_setting_evenly_in_plan_order_within_it() -> None:
    """The planner lists task after task; the queue takes a tenth of every task in its first tenth."""
    records = [r.record() for r in make_plan(["task=classifier,quadratic", "schedule=linear,cosine", "budget=0.2,0.5,1.0",
                                              "seed=0,1", "optimizer=sgd", "executor=debug"]).runs]
    assert [r["labels"]["task"] for r in records] == ["classifier"] * 12 + ["quadratic"] * 12  # plan order
    queued = settings.queue_order(records)
    assert sorted(r["id"] for r in queued) == sorted(r["id"] for r in records)
    assert [r["labels"]["task"] for r in queued] == ["classifier", "quadratic"] * 12
    for task in ("classifier", "quadratic"):
        assert [r["id"] for r in queued if r["labels"]["task"] == task] == [r["id"] for r in records if r["labels"]["task"] == task]
    # A setting key other than task/optimizer (here task.hidden) makes settings too; uneven sizes stay spread.
    mixed = records[:12] + [r.record() for r in make_plan(["task=classifier", "task.hidden=8", "budget=0.5,1.0",
                                                           "optimizer=sgd", "executor=debug"]).runs]
    order = [r["spec"]["task"].get("hidden") == 8 for r in settings.queue_order(mixed)]
    assert sum(order) == 2 and order.index(True) in range(2, 5) and order.index(True, order.index(True) + 1) in range(8, 11)


def test_a_local_launch_trains_its_runs_in_queue_order(tmp_path: Path) -> None:
    plan = make_plan(["task=classifier,quadratic", "full_steps=4", "budget=1.0", "seed=0,1",
                      "optimizer=sgd", "executor=debug"], name="order")
    sweep, _ = Sweep.create(plan, tmp_path)
    sweep.launch()
    # The debug executor trains one run after another: the order they finished is the order they started.
    started = sorted(plan.runs, key=lambda r: (store.run_dir(sweep.path, r.id) / store.STATUS).stat().st_mtime_ns)
    assert [r.labels["task"] for r in started] == ["classifier", "quadratic", "classifier", "quadratic"]
    assert eta.queue_steps(sweep.path) == {}  # every run finished


def test_a_branch_counts_only_the_steps_it_trains(tmp_path: Path) -> None:
    """A constant LR at 10 and 20 steps: the 10-step run forks from the 20-step one and trains what is left."""
    plan = make_plan(["task=classifier", "schedule=constant", "full_steps=20", "budget=0.5,1.0", "executor=debug"], name="b")
    sweep, _ = Sweep.create(plan, tmp_path)
    by_steps = {r.spec["steps"]: r.id for r in plan.runs}
    branch = store.read_json(store.run_dir(sweep.path, by_steps[10]) / store.RUN_RECORD)["branch"]
    assert branch["of"] == by_steps[20]
    assert eta.queue_steps(sweep.path) == {by_steps[20]: 20, by_steps[10]: 10 - branch["step"]}
