"""`schedsweep status`: counts per state and per setting, the runs that need attention by default, every
run with --all (in process: no training, no subprocess)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from schedsweep.cli import app
from schedsweep.cli.views import SHOWN
from schedsweep.plan.grid import make_plan
from schedsweep.sweep import store
from schedsweep.sweep.api import Sweep

GRID = ["task=quadratic", "full_steps=20", "schedule=linear,cosine", "optimizer=sgd,adamw", "seed=range(6)"]


def _sweep(tmp_path: Path, failed: int) -> tuple[Path, list[str]]:
    sweep, _ = Sweep.create(make_plan(GRID, check_imports=False, name="s"), tmp_path)
    ids = [r["id"] for r in store.read_plan(sweep.path)]
    for i, run_id in enumerate(ids):
        status = "failed" if i < failed else "done"
        store.write_status(store.run_dir(sweep.path, run_id), store.RunStatus(status, steps_done=7 if i < failed else 10,
                                                                             error="boom" if i < failed else None))
    return sweep.path, ids


def test_status_lists_failed_runs_and_counts_per_setting_but_not_every_done_run(tmp_path: Path) -> None:
    path, ids = _sweep(tmp_path, failed=2)
    out = CliRunner().invoke(app, ["status", str(path)], env={"COLUMNS": "200"}).output
    assert f"{len(ids)} runs · done {len(ids) - 2}" in out and "failed 2" in out
    assert "runs per setting" in out and "quadratic" in out
    shown = [i for i in ids if i in out]
    assert shown == ids[:2]  # the two failed runs, none of the done ones
    assert out.count("boom") == 2 and " 7 " in out  # the failed runs' error and the step they reached
    every = CliRunner().invoke(app, ["status", str(path), "--all"], env={"COLUMNS": "200"}).output
    assert all(i in every for i in ids)


def test_status_caps_the_attention_list_and_says_how_many_more(tmp_path: Path) -> None:
    path, ids = _sweep(tmp_path, failed=24)
    out = CliRunner().invoke(app, ["status", str(path)], env={"COLUMNS": "200"}).output
    assert sum(i in out for i in ids) == SHOWN
    assert f"... {24 - SHOWN} more that need attention; --all lists every run" in out
