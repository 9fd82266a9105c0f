"""Output people can read: the real CLI's tables with stdout piped, as `schedsweep report > file` writes them."""

from __future__ import annotations

import pytest

import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import make_logged_sweep
from helpers import Run

from schedsweep.results import collect, render
from schedsweep.results.report import build

from helpers import pythonpath

TESTS = Path(__file__).resolve().parent


def wide_sweep(root: Path) -> Path:
    """Long schedule names and seed spread: rows far wider than 80 columns."""
    return make_logged_sweep(root, [
        Run(s, b, loss + b + 0.0137 * seed, lr=lr, seed=seed)
        for b in (0.01, 0.02) for s, loss in (("cosine_with_a_long_warmup", 1.0), ("linear_decay_to_zero", 1.1))
        for lr in (1e-3, 3e-3) for seed in (0, 1, 2)
    ])


def piped(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"PYTHONPATH": pythonpath(TESTS)}
    proc = subprocess.run([sys.executable, "-m", "schedsweep", *args], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_piped_report_prints_every_row_of_every_table_on_one_line(tmp_path: Path) -> None:
    sweep = wide_sweep(tmp_path / "s")
    text = piped("report", str(sweep))
    sections = render.report_sections(build(collect.runs_frame(collect.collect(sweep).summary)))
    rows = [row for section in sections for row in section.rows]
    assert len(rows) > 10 and any("±" in cell for row in rows for cell in row)
    lines = text.splitlines()
    assert max(map(len, lines)) > 80  # what rich would have wrapped
    for row in rows:
        pattern = r"\s+".join(re.escape(cell) for cell in row if cell)
        assert any(re.search(pattern, line) for line in lines), f"row broken over lines: {row}"


@pytest.mark.slow
def test_piped_plan_table_is_not_wrapped(tmp_path: Path) -> None:
    text = piped("launch", "task=classifier", "schedule=linear,cosine", "budget=0.1", "optimizer=sgd,adamw",
                 "task.n_train=256,512", "--results", str(tmp_path), "--dry-run")
    lines = text.splitlines()
    assert max(map(len, lines)) > 80
    bar = r"[\s│┃]+"
    (head,) = [line for line in lines if "run id" in line]
    assert re.search(bar.join(["#", "run id", "task", "optimizer", "schedule", "budget", "steps", "lr", "seed",
                               r"task\.n_train"]), head)
    assert len([line for line in lines if re.search(bar.join([r"\d", "[0-9a-f]{12}", "classifier", r"\w+", r"\w+",
                                                              r"0\.1", "30", r"[\d.]+", "0", r"(256|512)"]), line)]) == 8
