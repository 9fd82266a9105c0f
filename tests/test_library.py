"""Sweep is the library: what `schedsweep report` prints is what `Sweep(path).report()` computes."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from schedsweep.cli import app
from schedsweep.errors import ResultsError
from schedsweep.sweep.api import Sweep
from helpers import small


def test_the_cli_report_is_the_library_report(tmp_path: Path) -> None:
    sweep = small(tmp_path)
    rep = Sweep(sweep).report()
    shown = CliRunner().invoke(app, ["report", str(sweep), "--format", "csv", "--table", "ranking"])
    assert shown.exit_code == 0, shown.output
    rows = list(csv.DictReader(io.StringIO(shown.stdout)))
    assert [(r["budget"], r["schedule"], r["rank"]) for r in rows] == [
        (str(b), s, str(k)) for b, s, k in rep.ranked[["budget", "schedule", "rank"]].itertuples(index=False)]
    assert [r["schedule"] for r in rows if r["rank"] == "1"] == ["linear", "linear"]  # 1.0 + b beats 1.2 + b
    terminal = CliRunner().invoke(app, ["report", str(sweep)], env={"COLUMNS": "200"}).output
    assert all(note in terminal for note in rep.notes)


def test_an_unknown_baseline_is_refused_by_the_library_too(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="--baseline 'rex' is not a schedule of this sweep; choose one of: linear, cosine"):
        Sweep(small(tmp_path)).report(baseline="rex")
