"""A grown sweep reuses: extending a grid (a schedule more) trains only the new runs, under the default name
(which changes with the grid) or any other; the finished runs of the other sweep are linked, not retrained."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedsweep import files
from schedsweep.sweep import claims, store
from schedsweep.train import metrics
from schedsweep.sweep import run_folder

from helpers import cli, statuses

GRID = ["task=quadratic", "full_steps=20", "budget=1.0", "optimizer=sgd", "executor=debug", "eval_every=10"]


@pytest.mark.slow
def test_a_grown_grid_trains_only_its_new_runs_under_any_name(tmp_path: Path) -> None:
    dry = cli("launch", *GRID, "schedule=linear,cosine", "--dry-run", cwd=tmp_path).stdout
    assert "time: no estimate (no finished run of task quadratic in results/ to time it by yet)" in dry
    first = cli("launch", *GRID, "schedule=linear,cosine", cwd=tmp_path).stdout
    (old,) = [p for p in (tmp_path / "results").iterdir() if store.is_sweep(p)]
    assert old.name.startswith("quadratic-2runs-") and "reused" not in first
    dry = cli("launch", *GRID, "schedule=linear,cosine,rex", "--dry-run", cwd=tmp_path).stdout
    assert "time: about 0:00:" in dry and "ms/step over 2 run(s); 1 worker(s)" in dry  # timed by the first sweep's runs
    grown = cli("launch", *GRID, "schedule=linear,cosine,rex", cwd=tmp_path).stdout
    assert f"reused 2 finished run(s) of other sweeps (same run ids): {old.name} (2)" in grown
    assert "skipping 2 done; 1 to run" in grown
    new = next(p for p in (tmp_path / "results").iterdir() if p != old and store.is_sweep(p))
    assert sorted(statuses(new).values()) == ["done", "done", "done"]
    for run_id in statuses(old):
        here, there = store.run_dir(new, run_id), store.run_dir(old, run_id)
        assert claims.attempts(here) == []  # never trained in the new sweep
        assert files.read_json(here / run_folder.RECORD)["reused_from"] == str(there.resolve())
        assert metrics.read_metrics(here / run_folder.METRICS).equals(metrics.read_metrics(there / run_folder.METRICS))
    named = cli("launch", *GRID, "schedule=linear,cosine,rex", "--name", "mine", cwd=tmp_path).stdout
    assert "reused 3 finished run(s)" in named and "0 to run" in named
    report = cli("report", str(tmp_path / "results" / "mine"), "--format", "csv", "--table", "ranking", cwd=tmp_path).stdout
    assert sorted(line.split(",")[4] for line in report.splitlines()[1:]) == ["cosine", "linear", "rex"]
