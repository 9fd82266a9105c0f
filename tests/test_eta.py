"""The sweep's ETA: from planned steps and measured time per step, not from a count of runs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedsweep import eta


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
