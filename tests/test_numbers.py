"""One precision per column: the report's means share their decimal places (0.9970 beside 0.9986, never 0.997)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from schedsweep.cli import app
from schedsweep.results.numbers import decimals

from helpers import Run, make_sweep


def test_decimals_show_the_largest_value_with_four_significant_digits() -> None:
    assert decimals(pd.Series([0.997, 0.9986, 0.92])) == 4
    assert decimals(pd.Series([1.129, 0.9145, float("inf")])) == 3
    assert decimals(pd.Series([123.4, 5.0])) == 1 and decimals(pd.Series([float("nan")])) == 4


def test_the_mean_column_of_the_report_has_one_precision(tmp_path: Path) -> None:
    runs = [Run(s, 1.0, loss) for s, loss in (("rex", 0.997), ("linear", 0.9986), ("cosine", 0.92))]
    md = CliRunner().invoke(app, ["report", str(make_sweep(tmp_path, runs)), "--format", "md"]).output
    assert "| cosine | 0.001 | 0.9200 |" in md and "| rex | 0.001 | 0.9970 |" in md and "| linear | 0.001 | 0.9986 |" in md
    assert "| +0.0770 (+8.4%) |" in md  # the gap at the same precision
