"""The one writer of schedule YAML (refinement, predict's optimiser, the refinement study): a valid piecewise
spec that keeps the curve's values and holds its last value to the end of the budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from schedsweep import schedules
from schedsweep.schedules.tabulated import piecewise_spec, write_spec


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=600), st.integers(2, 300))
def test_a_sampled_curve_becomes_a_valid_piecewise_schedule_that_holds_its_last_value(values: list[float], points: int) -> None:
    n = len(values)
    spec = piecewise_spec(np.arange(n) / n, values, description="d", source="s", points=points)
    pts = spec["points"]
    assert pts[0][0] == 0.0 and pts[-1][0] == 1.0 and len(pts) <= points + 1
    assert pts[-1][1] == pts[-2][1] == round(values[-1], 6)  # held, not forced to 0 or to anything else
    assert pts[0][1] == round(values[0], 6)
    curve = schedules.check(spec, n, "written")  # a budget of n steps: update t gets the value sampled at t/n
    kept = [round(fraction * n) for fraction, _ in pts[:-1]]
    # fractions are rounded to 6 digits: off by <= 5e-7, which moves a value by <= 5e-7 x its slope (<= n per unit)
    assert np.allclose(curve[kept], [value for _, value in pts[:-1]], atol=n * 5e-7 + 1e-6)


def test_written_yaml_reads_back_as_the_spec(tmp_path: Path) -> None:
    spec = piecewise_spec([0.0, 0.5], [1.0, 0.25], description="two points", source="a test")
    write_spec(tmp_path / "schedule" / "mine.yaml", spec)
    assert yaml.safe_load((tmp_path / "schedule" / "mine.yaml").read_text()) == spec
    assert spec["points"] == [[0.0, 1.0], [0.5, 0.25], [1.0, 0.25]]
