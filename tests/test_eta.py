"""The sweep's ETA: from planned steps and measured time per step, not from a count of runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings as hypothesis_settings
from hypothesis import strategies as st

from schedsweep import files
from schedsweep.sweep import eta, store
from schedsweep.sharing import forks
from schedsweep.train import metrics
from schedsweep.plan import variants
from schedsweep.plan.grid import make_plan
from schedsweep.sweep.api import Sweep
from schedsweep.sweep import run_folder


def _nothing(run: str) -> int | None:
    return None


def test_values() -> None:
    queue = {"a": range(100), "b": range(1000), "c": range(100), "d": range(500, 1000)}  # d: a branch from step 500
    reached = {"a": 40, "b": 300, "d": 750}.get
    assert eta.steps_done(queue, {"a": "running", "b": "running"}, reached) == 40 + 300  # the steps they reached
    assert eta.steps_done(queue, {"a": "running", "b": "running"}, _nothing) == 0  # nothing logged yet
    assert eta.steps_done(queue, {"d": "running"}, reached) == 250  # a branch counts from its fork
    assert eta.steps_done(queue, {"a": "done", "d": "done", "c": "pending"}, reached) == 100 + 500
    assert eta.remaining_s(0, 2200, elapsed_s=5.0) is None  # nothing measured yet
    # 600 steps in 6 s, 1600 left.
    assert eta.remaining_s(600, 1600, elapsed_s=6.0) == pytest.approx(16.0)
    assert eta.remaining_s(2200, 0, elapsed_s=9.0) == 0.0
    assert eta.clock(None) == "?" and eta.clock(3725.4) == "1:02:05" and eta.clock(59.6) == "0:01:00"


def test_a_count_of_runs_would_be_off_by_the_budgets_ratio() -> None:
    """Short runs first: 5 of 10 runs done is 1/11 of the work, not half."""
    queue = {f"r{i}": range(100 if i < 5 else 1000) for i in range(10)}
    done = eta.steps_done(queue, {f"r{i}": "done" for i in range(5)}, _nothing)
    assert eta.remaining_s(done, 5500 - done, elapsed_s=5.0) == pytest.approx(50.0)  # a run count says 5


def test_which_runs_finished_counts_not_their_place_in_the_queue() -> None:
    """Two workers: the long first run is still going when the two short ones behind it are done."""
    queue = {"long": range(1000), "short1": range(100), "short2": range(100), "next": range(1000)}
    statuses = {"long": "running", "short1": "done", "short2": "done", "next": "running"}
    reached = {"long": 900, "next": 100}.get
    assert eta.steps_done(queue, statuses, reached) == 200 + 900 + 100  # not 1000 + 100 for "the first two finished"


@hypothesis_settings(deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=50), st.floats(1e-5, 1.0), st.data())
def test_exact_for_a_serial_queue_at_a_constant_time_per_step(steps: list[int], per_step: float, data: st.DataObject) -> None:
    """One run at a time, each step as long: the estimate is the time left, wherever the running run is."""
    queue = {str(i): range(n) for i, n in enumerate(steps)}
    finished = data.draw(st.integers(0, len(steps) - 1))
    into = data.draw(st.integers(0, steps[finished]))  # steps the running run has reached
    statuses = {str(i): "done" if i < finished else "running" if i == finished else "pending" for i in range(len(steps))}
    done = eta.steps_done(queue, statuses, {str(finished): into}.get)
    assert done == sum(steps[:finished]) + into
    left = eta.remaining_s(done, sum(steps) - done, per_step * done)
    if done:
        assert left == pytest.approx(per_step * (sum(steps) - done), rel=1e-9, abs=1e-9)


def test_the_estimate_is_timed_from_the_first_step() -> None:
    """Workers take 5 s to start (torch imports), then each 10-step run takes 1 s, one at a time."""
    runs = [f"r{i}" for i in range(10)]
    clock = {"now": 0.0}

    def reached(run: str) -> int | None:  # where the running run is at the time
        i = runs.index(run)
        return None if clock["now"] < 5 + i else round(10 * (clock["now"] - 5 - i))

    estimate = eta.Estimate({run: range(10) for run in runs}, reached)

    def at(now: float) -> float | None:
        clock["now"] = now
        finished = max(0, int(now - 5))
        statuses = {run: "done" if i < finished else "running" if i == finished else "pending" for i, run in enumerate(runs)}
        return estimate.left_s(statuses, now)

    assert at(3.0) is None  # nothing trained yet
    assert at(5.5) is None  # the clock starts here, at 5 steps done
    assert at(7.5) is None  # 2 s timed: less than eta.WINDOW_S
    assert eta.WINDOW_S == 5.0
    assert at(10.5) == pytest.approx(4.5)  # 55 steps done, 45 left, at the 10 steps per second measured since
    assert at(12.2) == pytest.approx(2.8)
    assert eta.Estimate({"r": range(10)}, {"r": 10}.get).left_s({"r": "done"}, now=1.0) == 0.0  # done before any window
    # Timed from the launch instead, the 5 s of start-up would be spread over every step left: 8.2 s, not 4.5.
    assert eta.remaining_s(55, 45, elapsed_s=10.0) == pytest.approx(8.2, abs=0.02)


def test_a_study_queue_spreads_each_setting_evenly_in_plan_order_within_it() -> None:
    """The planner lists task after task; the queue takes a tenth of every task in its first tenth."""
    records = [r.record() for r in make_plan(["task=classifier,quadratic", "schedule=linear,cosine", "budget=0.2,0.5,1.0",
                                              "seed=0,1", "optimizer=sgd", "executor=debug"]).runs]
    assert [r["labels"]["task"] for r in records] == ["classifier"] * 12 + ["quadratic"] * 12  # plan order
    queued = variants.queue_order(records)
    assert sorted(r["id"] for r in queued) == sorted(r["id"] for r in records)
    assert [r["labels"]["task"] for r in queued] == ["classifier", "quadratic"] * 12
    for task in ("classifier", "quadratic"):
        assert [r["id"] for r in queued if r["labels"]["task"] == task] == [r["id"] for r in records if r["labels"]["task"] == task]
    # A setting key other than task/optimizer (here task.hidden) makes settings too; uneven sizes stay spread.
    mixed = records[:12] + [r.record() for r in make_plan(["task=classifier", "task.hidden=8", "budget=0.5,1.0",
                                                           "optimizer=sgd", "executor=debug"]).runs]
    order = [r["spec"]["task"].get("hidden") == 8 for r in variants.queue_order(mixed)]
    assert sum(order) == 2 and order.index(True) in range(2, 5) and order.index(True, order.index(True) + 1) in range(8, 11)


def test_a_local_launch_trains_its_runs_in_queue_order(tmp_path: Path) -> None:
    plan = make_plan(["task=classifier,quadratic", "full_steps=4", "budget=1.0", "seed=0,1",
                      "optimizer=sgd", "executor=debug"], name="order")
    sweep, _ = Sweep.create(plan, tmp_path)
    sweep.launch()
    # The debug executor trains one run after another: the order they finished is the order they started.
    started = sorted(plan.runs, key=lambda r: (store.run_dir(sweep.path, r.id) / run_folder.STATUS).stat().st_mtime_ns)
    assert [r.labels["task"] for r in started] == ["classifier", "quadratic", "classifier", "quadratic"]
    assert eta.queue(sweep.path) == {}  # every run finished


def test_a_branch_counts_only_the_steps_it_trains(tmp_path: Path) -> None:
    """A constant LR at 10 and 20 steps: the 10-step run forks from the 20-step one and trains what is left."""
    plan = make_plan(["task=classifier", "schedule=constant", "full_steps=20", "budget=0.5,1.0", "executor=debug"], name="b")
    sweep, _ = Sweep.create(plan, tmp_path)
    by_steps = {r.spec["steps"]: r.id for r in plan.runs}
    branch = files.read_json(store.run_dir(sweep.path, by_steps[10]) / run_folder.RECORD)["branch"]
    assert branch["of"] == by_steps[20]
    assert eta.queue(sweep.path) == {by_steps[20]: range(20), by_steps[10]: range(branch["step"], 10)}


def test_the_writer_keeps_the_step_reached(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    writer = metrics.MetricsWriter(folder)
    assert metrics.reached(folder) is None  # nothing logged yet
    row = {"step": 0, "lr": 0.1, "loss": 1.0, "samples_seen": 8, "wall_s": 0.0}
    writer.append(row)
    assert metrics.reached(folder) == 1  # the first row at once: the ETA's clock starts there
    writer.append(row | {"step": 1})
    assert metrics.reached(folder) == 1  # then at most every PROGRESS_S
    writer.flush()
    assert metrics.reached(folder) == 2 and metrics.part_files(folder)  # and at each part
    assert [p.name for p in folder.iterdir() if not p.name.startswith(metrics.PART_PREFIX)] == [metrics.PROGRESS]


@pytest.mark.slow
def test_a_local_launch_sees_a_running_runs_progress(tmp_path: Path) -> None:
    """The worker keeps how far its run got and the queue looks every few seconds, so the progress bar's
    estimate follows a long run, not only the runs that ended (one 6,000-step run, several seconds)."""
    plan = make_plan(["task=classifier", "task.hidden=16", "full_steps=6000", "eval_every=2000", "budget=1.0",
                      "executor=local", "executor.max_parallel=1"], name="long")
    sweep, _ = Sweep.create(plan, tmp_path)
    estimate = eta.Estimate.of(sweep.path)  # what the progress bar uses
    assert estimate.total == 6000
    seen: list[tuple[str, int]] = []  # (the run's status, steps done) at each look

    def watch(counts: object, statuses: dict[str, str]) -> None:
        estimate.left_s(statuses, time.monotonic())
        (status,) = [statuses[run] for run in estimate.queue]
        seen.append((status, eta.steps_done(estimate.queue, statuses, estimate.reached)))

    assert sweep.launch(progress=watch) == {"done": 1}
    mid = [done for status, done in seen if status == "running" and 0 < done < 6000]
    assert mid and mid == sorted(mid), seen  # seen while it trained, never going back
    assert seen[-1] == ("done", 6000)
    assert estimate.since is not None and estimate.since[1] < 6000  # the clock started mid-run


def test_a_branch_is_queued_after_the_run_it_forks_from(tmp_path: Path) -> None:
    """Plan order puts the 100% run, which the shorter constant runs branch from, last: the queue moves it
    up to just before its first branch, so its branches do not all wait for it at the end of the sweep."""
    plan = make_plan(["task=classifier", "schedule=linear,constant", "full_steps=20", "budget=0.25,0.5,1.0",
                      "optimizer=sgd", "executor=debug"], name="tree")
    sweep, _ = Sweep.create(plan, tmp_path)
    queue = [store.run_dir(sweep.path, r["id"]) for r in variants.queue_order(store.read_plan(sweep.path))]
    parent = {p: p.parent / b["of"] for p in queue if (b := files.read_json(p / run_folder.RECORD).get("branch"))}
    trunks = set(parent.values())
    constant = {p for p, r in zip(queue, variants.queue_order(store.read_plan(sweep.path))) if r["labels"]["schedule"] == "constant"}
    assert constant - trunks <= set(parent) and trunks  # the shorter constant runs branch from the longest
    assert any(queue.index(t) > min(queue.index(b) for b in parent if parent[b] == t) for t in trunks)  # planned after
    ordered = forks.parents_first(queue)
    assert sorted(ordered) == sorted(queue)
    for trunk in trunks:  # just before its first branch: no earlier than needed
        assert ordered.index(trunk) == min(ordered.index(b) for b in parent if parent[b] == trunk) - 1
    assert [p for p in ordered if p not in trunks] == [p for p in queue if p not in trunks]  # the rest keep their order
    sweep.launch()  # the debug executor trains one run after another, in the order it is given
    finished = sorted(queue, key=lambda p: (p / run_folder.STATUS).stat().st_mtime_ns)
    assert finished == ordered
