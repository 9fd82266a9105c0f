"""80 columns and up: in a real terminal (a pty) no number of the report, the status view or the progress
line is cut or broken over lines; tables leave out low-priority columns, then stack the rest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import terminal
from helpers import make_logged_sweep
from helpers import Run

from schedsweep.results import collect, render
from schedsweep.results.report import build

BUDGETS = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1)  # seven pivot columns with long schedule names: wider than 80


def wide_sweep(root: Path) -> Path:
    return make_logged_sweep(root, [
        Run(s, b, loss + b + 0.0137 * seed, lr=lr, seed=seed)
        for b in BUDGETS for s, loss in (("cosine_with_a_long_warmup", 1.0), ("linear_decay_to_zero", 1.1))
        for lr in (1e-3, 3e-3) for seed in (0, 1, 2)
    ])


@pytest.mark.parametrize("columns", [80, 120])
def test_report_in_a_terminal_never_cuts_or_breaks_a_number(tmp_path: Path, columns: int) -> None:
    sweep = wide_sweep(tmp_path / "s")
    screen = terminal.run(["report", str(sweep)], columns, tmp_path)
    assert screen.rc == 0, screen.text
    assert "…" not in screen.text
    assert max(map(len, screen.lines)) <= columns
    sections = render.report_sections(build(collect.runs_frame(collect.collect(sweep).summary)))
    ranking, grid = sections[0], sections[1]
    spreads = [row[ranking.headers.index("mean ± std")] for row in ranking.rows]
    assert len(spreads) == 12 and all("±" in s for s in spreads)
    for cell in spreads:  # "1.024 ± 0.014" on one line, never "1.024 ±" / "0.014"
        assert any(cell in line for line in screen.lines), cell
    for row in grid.rows:  # every budget's "mean (rank)" of the pivot, whole, once stacked if need be
        for cell in row[1:]:
            assert any(cell in line for line in screen.lines), cell
    if columns == 80:  # seven budgets do not fit: the pivot is stacked, and says so
        assert "(continued)" in screen.text
    else:
        assert "(continued)" not in screen.text


@pytest.mark.slow
def test_progress_line_keeps_its_bar_counts_and_eta_at_80_columns(tmp_path: Path) -> None:
    screen = terminal.run(["launch", "task=quadratic", "full_steps=20", "schedule=linear,cosine", "budget=1.0",
                           "seed=0,1,2", "executor=debug", "--name", "p"], 80, tmp_path)
    assert screen.rc == 0, screen.raw
    frames = [f for f in re.split(r"[\r\n]+", screen.raw) if "eta" in f]
    assert frames
    last = frames[-1]  # the finished bar, as it stays on the screen
    assert re.search(r"^done 6 ━+ 6/6 eta 0:00:00\s*$", last), last
    assert not any("…" in f for f in frames)
    assert not any(re.search(r"(running|requeued|interrupted|failed|diverged) 0", f) for f in frames)
    assert max(len(f) for f in frames) <= 80
