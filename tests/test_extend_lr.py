"""`launch --extend-lr`: a grid whose best LR sits at an edge grows, round by round, until it is inside or the
round limit is reached; only the new LRs train; lr_mult grids and several optimizers; the report says why."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from schedsweep import files
from schedsweep.cli import app
from schedsweep.plan.identity import Identifier
from schedsweep.plan.point import Run
from schedsweep.sweep import extend, store

TINY = ["task=quadratic", "full_steps=40", "budget=1.0", "schedule=constant", "executor=debug"]


def launch(tmp_path: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["launch", *TINY, *args, "--results", str(tmp_path / "r"), "--name", "s"])
    assert result.exit_code == 0, result.output
    return result.stdout


def lrs(sweep: Path) -> list[float]:
    return sorted({r["labels"]["lr"] for r in store.read_plan(sweep)})


def test_next_lr_continues_the_grid_pattern() -> None:
    assert extend.next_lr([1e-3, 3e-3, 1e-2], upward=True) == 0.03
    assert extend.next_lr([1e-3, 3e-3, 1e-2, 3e-2], upward=True) == 0.1
    assert extend.next_lr([1e-3, 3e-3, 1e-2], upward=False) == 0.0003
    assert extend.next_lr([0.1, 0.2], upward=True) == 0.4 and extend.next_lr([0.1], upward=False) == pytest.approx(0.1 / 3)


@pytest.mark.slow
def test_an_edge_grid_is_extended_until_its_best_lr_is_inside(tmp_path: Path) -> None:
    # quadratic + AdamW at 40 constant steps: best near lr 0.3 (0.03, 0.09 -> 0.27 -> 0.81, which is worse).
    text = launch(tmp_path, "optimizer.lr=0.03,0.09", "seed=0,1", "--extend-lr")
    sweep = tmp_path / "r" / "s"
    assert "round 1: 2 run(s) for 1 cell(s) at an edge" in text and "(0.09) -> lr 0.27" in text
    assert "(0.27) -> lr 0.81" in text and "no best LR at an edge of its grid after 2 round(s)" in text
    assert lrs(sweep) == [0.03, 0.09, 0.27, 0.81]
    assert [r["runs"] for r in files.read_jsonl(sweep / store.LAUNCHES)] == [4, 2, 2]  # only the new LRs
    report = CliRunner().invoke(app, ["report", str(sweep), "--format", "md"]).stdout
    assert "--extend-lr round 1 added 2 run(s): quadratic adamw 100% constant: best at the top of its grid (0.09) -> lr 0.27" in report
    # A relaunch finds nothing to extend and trains nothing.
    again = launch(tmp_path, "optimizer.lr=0.03,0.09", "seed=0,1", "--extend-lr")
    assert "4 runs planned; skipping 4 done; 0 to run" in again and "no best LR at an edge of its grid." in again


@pytest.mark.slow
def test_the_extension_stops_at_the_round_limit_and_a_relaunch_goes_on(tmp_path: Path) -> None:
    text = launch(tmp_path, "optimizer.lr=0.003,0.009", "--extend-lr", "--extend-rounds", "1")
    sweep = tmp_path / "r" / "s"
    assert "round 1: 1 run(s)" in text and "stopped at the round limit (1); 1 cell(s) still at an edge" in text
    assert lrs(sweep) == [0.003, 0.009, 0.027]
    again = launch(tmp_path, "optimizer.lr=0.003,0.009", "--extend-lr", "--extend-rounds", "1")
    assert "round 1 (the sweep's round 2): 1 run(s)" in again and lrs(sweep) == [0.003, 0.009, 0.027, 0.081]


@pytest.mark.slow
def test_lr_mult_grids_and_two_optimizers_extend_each_its_own_lr(tmp_path: Path) -> None:
    # lr_mult of each optimizer's tuned LR (adamw 0.5, sgd 0.015): 0.01 and 0.03 of it are both too low.
    launch(tmp_path, "optimizer=adamw,sgd", "lr_mult=0.01,0.03", "--extend-lr", "--extend-rounds", "1")
    sweep = tmp_path / "r" / "s"
    records = store.read_plan(sweep)
    by_opt = {o: sorted(r["labels"]["lr"] for r in records if r["labels"]["optimizer"] == o) for o in ("adamw", "sgd")}
    assert by_opt == {"adamw": [0.005, 0.015, 0.045], "sgd": [0.00015, 0.00045, 0.00135]}
    added = [r for r in records if r["labels"]["lr"] in (0.045, 0.00135)]
    assert sorted(r["labels"]["axes"]["lr_mult"] for r in added) == [0.09, 0.09]
    statuses = {store.read_status(store.run_dir(sweep, r["id"])).status for r in records}
    assert statuses == {"done"}


def test_a_moved_run_is_the_run_the_planner_would_make(tmp_path: Path) -> None:
    from schedsweep import tasks
    from schedsweep.plan.grid import make_plan
    from schedsweep.train import optimizers

    low, high = (make_plan(["task=quadratic", "budget=1.0", "schedule=cosine", f"optimizer.lr={lr}"], check_imports=False)
                 .runs[0] for lr in (0.01, 0.03))
    moved = extend.moved(low, 0.03, Identifier(tasks.identity_params, optimizers.identity_params))
    assert moved.id == high.id and moved.spec == high.spec and moved.labels["lr"] == 0.03
    assert isinstance(moved, Run)


@pytest.mark.slow
def test_diverged_lrs_count_as_too_high(tmp_path: Path) -> None:
    # Momentum SGD on the quadratic is stable below lr 0.063: 0.3 and 0.9 both diverge, so the grid grows downwards.
    text = launch(tmp_path, "optimizer=sgd", "optimizer.lr=0.3,0.9", "--extend-lr", "--extend-rounds", "2")
    assert "every LR diverged (0.3) -> lr 0.1" in text and "every LR diverged (0.1) -> lr 0.0333333" in text
    assert lrs(tmp_path / "r" / "s") == [0.0333333, 0.1, 0.3, 0.9]
