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
    steps = [100, 1000, 100, 1000]
    assert eta.remaining_s(steps, finished=0, running=2, elapsed_s=5.0) is None  # nothing measured yet
    # One 100-step run done in 6 s while the 1000-step one is half done: 600 steps took 6 s, 1600 are left.
    assert eta.remaining_s(steps, finished=1, running=1, elapsed_s=6.0) == pytest.approx(16.0)
    assert eta.remaining_s(steps, finished=4, running=0, elapsed_s=9.0) == 0.0
    assert eta.clock(None) == "?" and eta.clock(3725.4) == "1:02:05" and eta.clock(59.6) == "0:01:00"


def test_a_count_of_runs_would_be_off_by_the_budgets_ratio() -> None:
    """Short runs first: 5 of 10 runs done is 1/11 of the work, not half."""
    steps = [100] * 5 + [1000] * 5
    assert eta.remaining_s(steps, finished=5, running=0, elapsed_s=5.0) == pytest.approx(50.0)  # a run count says 5


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=50), st.floats(1e-5, 1.0), st.data())
def test_exact_for_a_serial_queue_at_a_constant_time_per_step(steps: list[int], per_step: float, data: st.DataObject) -> None:
    finished = data.draw(st.integers(1, len(steps)))
    left = eta.remaining_s(steps, finished, 0, per_step * sum(steps[:finished]))
    assert left == pytest.approx(per_step * sum(steps[finished:]), rel=1e-9, abs=1e-9)


def test_the_estimate_is_timed_from_the_first_finished_run() -> None:
    """Workers take 5 s to start (torch imports), then each 10-step run takes 1 s, one at a time."""
    estimate = eta.Estimate([10] * 10)
    assert estimate.left_s(finished=0, running=1, now=3.0) is None
    assert estimate.left_s(finished=1, running=1, now=6.0) is None  # the clock starts here
    # 7.5 runs left (the one running is taken to be half done), at the 1 s per run measured since.
    assert estimate.left_s(finished=2, running=1, now=7.0) == pytest.approx(7.5)
    assert estimate.left_s(finished=5, running=1, now=10.0) == pytest.approx(4.5)
    # Timed from the launch instead, the 5 s of start-up would be spread over every step left: 21 s, not 7.5.
    assert eta.remaining_s([10] * 10, finished=2, running=1, elapsed_s=7.0) == pytest.approx(21.0)


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
    assert eta.queue_steps(sweep.path) == []  # every run finished
