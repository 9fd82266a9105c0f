"""`report --table`: its help names every table the report can write as CSV, and each name is accepted."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from schedsweep.cli import app
from schedsweep.results import render
from schedsweep.results.text import TABLES
from helpers import cli


def test_the_help_of_report_table_names_every_table_the_code_writes() -> None:
    empty = SimpleNamespace(**{k: pd.DataFrame() for k in (
        "ranked", "pivot", "by_budget", "by_optimizer", "top_k", "ratios", "ratio_summary", "performance", "pairs",
        "contrasts", "problems", "lr_fit", "lr_law")})
    written = list(render.raw_tables(empty))  # type: ignore[arg-type]
    assert written == list(TABLES)  # the CLI accepts exactly the tables the report writes
    result = CliRunner().invoke(app, ["report", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    option = text[text.index("--table"):text.index("--plots")]
    named = set(re.findall(r"[a-z_]+", re.sub(r"[│╭╮╰╯─]", " ", option)))
    missing = [t for t in written if t not in named]
    assert not missing, f"report --help does not name the table(s) {missing}: {option}"
    assert "pairs" in named and "lr_law" in named


@pytest.mark.slow
def test_an_unknown_table_is_refused_with_every_name(tmp_path: Path) -> None:
    proc = cli("report", str(tmp_path), "--format", "csv", "--table", "nope", cwd=tmp_path, check=2)
    assert all(name in proc.stderr for name in TABLES)
    assert "Traceback" not in proc.stderr
