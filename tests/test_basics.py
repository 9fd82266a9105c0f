"""Missing basics: `schedsweep ls` and `schedsweep runs` (in a terminal at 80 columns), axis labels on every
figure of `report --plots`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib.figure
import pytest
import terminal
from helpers import make_logged_sweep
from helpers import Run, make_sweep
from typer.testing import CliRunner

from schedsweep import files
from schedsweep.cli import app
from schedsweep.sweep import store


def two_sweeps(root: Path) -> None:
    make_sweep(root / "alpha", [Run("linear", 0.5, 1.0), Run("cosine", 0.5, 1.1), Run("linear", 1.0, status="failed"),
                                Run("cosine", 1.0, status="pending")])
    make_sweep(root / "beta", [Run("wsd", 1.0, 0.9, seed=s) for s in range(3)])
    files.append_jsonl(root / "alpha" / store.LAUNCHES, {"time": "2026-12-01T10:20:30+00:00", "argv": ["launch", "--name", "alpha"]})


def cells(lines: list[str], *first: str) -> list[list[str]]:
    """The table rows that start with one of `first`, split into cells (two or more spaces apart)."""
    return [re.split(r"\s{2,}", line.strip()) for line in lines if line.split() and line.split()[0] in first]


def test_ls_lists_every_sweep_with_its_runs_by_state_and_last_launch(tmp_path: Path) -> None:
    two_sweeps(tmp_path / "results")
    (tmp_path / "results" / "not-a-sweep").mkdir()
    screen = terminal.run(["ls"], 80, tmp_path)
    assert screen.rc == 0, screen.text
    rows = cells(screen.lines, "alpha", "beta")
    assert [r[:3] for r in rows] == [["alpha", "4", "done 2 · pending 1 · failed 1"], ["beta", "3", "done 3"]]
    assert rows[0][3] == "2026-12-01 10:20" and len(rows[1]) == 3  # beta was never launched: no date
    assert max(map(len, screen.lines)) <= 80 and "…" not in screen.text


def test_runs_lists_ids_labels_status_step_and_final_loss_and_filters_with_where(tmp_path: Path) -> None:
    two_sweeps(tmp_path / "results")
    records = store.read_plan(tmp_path / "results" / "alpha")
    screen = terminal.run(["runs", "results/alpha", "--where", "budget=1.0"], 80, tmp_path)
    assert screen.rc == 0, screen.text
    rows = cells(screen.lines, *[r["id"] for r in records])
    want = [r["id"] for r in records if r["labels"]["budget"] == 1.0]
    assert [r[0] for r in rows] == want
    assert [r[1:] for r in rows] == [["linear", "failed", "1000/1000"], ["cosine", "pending", "0/1000"]]
    assert "every run: budget=1.0, optimizer=adamw, lr=0.001, seed=0" in screen.text
    assert "2 of 4 runs" in screen.text
    every = terminal.run(["runs", "results/alpha", "--where", "schedule=linear"], 80, tmp_path)
    losses = [row[-1] if len(row) == 5 else "" for row in cells(every.lines, *[r["id"] for r in records])]
    assert losses == ["1.0000", ""]  # done at 1.0; the failed run has none
    bad = terminal.run(["runs", "results/alpha", "--where", "colour=red"], 80, tmp_path)
    assert bad.rc == 2 and "not a label of this sweep's runs" in bad.text


def test_every_panel_of_every_report_figure_has_axis_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep = make_logged_sweep(tmp_path / "s", [Run(s, b, loss + b + lr, lr=lr, seed=seed) for b in (0.01, 0.02)
                                               for s, loss in (("linear", 1.0), ("rex", 0.9)) for lr in (1e-3, 3e-3)
                                               for seed in (0, 1)])
    unlabelled: dict[str, list[str]] = {}
    savefig = matplotlib.figure.Figure.savefig

    def check_then_save(fig: Any, *args: Any, **kwargs: Any) -> None:
        unlabelled[fig.get_suptitle()] = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.has_data()
                                          and not (ax.get_xlabel() and ax.get_ylabel())]
        savefig(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", check_then_save)
    result = CliRunner().invoke(app, ["report", str(sweep), "--plots", str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    assert len(unlabelled) >= 5
    assert {title: axes for title, axes in unlabelled.items() if axes} == {}
