"""`schedsweep predict` on a real tiny sweep of the built-in classifier: the real CLI, real training, real Parquet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from schedsweep.cli import app
from schedsweep.predict.sweep import Group, parse_budget, predict_sweep, rankings, spearman

TINY = ["task=classifier", "task.hidden=16", "task.n_train=2000", "task.n_eval=256", "full_steps=200", "eval_every=5",
        "executor=debug", "executor.threads_per_run=1"]


def cli(*args: str, cwd: Path, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "schedsweep", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc




@pytest.mark.slow
def test_predict_fits_on_constant_and_cosine_and_predicts_the_other_runs(tiny_sweep: Path) -> None:
    plot = tiny_sweep.parent / "curves.png"
    proc = cli("predict", str(tiny_sweep), "--fit", "schedule=constant,cosine", "--fit", "budget=1.0",
               "--what-if", "schedule=wsd,rex", "budget=0.25,2.0", "--plot", str(plot), cwd=tiny_sweep.parent)
    groups = predict_sweep(tiny_sweep, {"schedule": ["constant", "cosine"], "budget": ["1.0"]})
    assert len(groups) == 1
    runs = groups[0].runs
    held = runs[~runs["fitted"]]
    assert sorted(runs[runs["fitted"]]["schedule"]) == ["constant", "cosine"] and len(held) == 6
    assert held["rel_error"].max() < 0.1  # within 10% on runs the law never saw (typically ~1-3%)
    for r in held.itertuples():  # what the CLI prints is what the library computes
        assert f"{r.predicted:.4g}" in proc.stdout and f"{r.actual:.4g}" in proc.stdout
    summary = pd.read_parquet(tiny_sweep / "collected" / "summary.parquet").set_index("run_id")
    assert np.allclose(runs["actual"], summary.loc[runs["id"], "final_eval_loss"])
    assert "what-if runs (never trained)" in proc.stdout and "400" in proc.stdout and " 50 " in proc.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ranks = rankings(groups[0])
    assert list(ranks["steps"]) == [100, 200] and ranks["spearman"].between(-1, 1).all()


@pytest.mark.slow
def test_the_optimised_schedule_is_written_and_launches(tiny_sweep: Path) -> None:
    conf = tiny_sweep.parent / "mine"
    target = conf / "schedule" / "mpl_opt.yaml"
    # --force: on this tiny sweep the validation says the law does not rank the schedules (test_predict_validate)
    proc = cli("predict", str(tiny_sweep), "--fit", "budget=1.0", "--optimize", "--budget", "1.0", "--name", "mpl_opt",
               "--out", str(target), "--force", cwd=tiny_sweep.parent)
    spec = yaml.safe_load(target.read_text())
    values = [v for _, v in spec["points"]]
    assert spec["shape"] == "piecewise" and spec["points"][0][0] == 0.0 and spec["points"][-1][0] == 1.0
    after = values[int(np.argmax(values)):]
    assert max(values) == 1.0 and all(b <= a + 1e-9 for a, b in zip(after, after[1:]))  # non-increasing after the warm-up
    assert "predicted final loss" in proc.stdout and f"--config-dir {conf} schedule=mpl_opt" in proc.stdout
    cli("launch", *TINY, "schedule=mpl_opt", "budget=1.0", "--config-dir", str(conf), "--name", "opt",
        "--results", str(tiny_sweep.parent), cwd=tiny_sweep.parent)
    cli("collect", str(tiny_sweep.parent / "opt"), cwd=tiny_sweep.parent)
    status = pd.read_parquet(tiny_sweep.parent / "opt" / "collected" / "summary.parquet")
    assert list(status["status"]) == ["done"] and np.isfinite(status["final_eval_loss"]).all()


@pytest.mark.slow
@pytest.mark.parametrize("args,message", [
    (["--fit", "schedule=nope"], "selects no finished run"),
    (["--fit", "colour=red"], "not a column of this sweep's runs"),
    (["--what-if", "schedule=no_such_schedule"], "no_such_schedule"),
    (["--law", "chinchilla"], "not one of: mpl, tissue"),
    (["--optimize"], "--name NAME"),
    (["budget=1.0"], "selections follow --what-if"),
    (["--fit", "schedule=constant", "--fit", "budget=1.0"], "too few runs or points"),
])
def test_bad_input_is_one_message_and_exit_2(tiny_sweep: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["predict", str(tiny_sweep), *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_not_a_sweep_is_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["predict", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_budgets_are_fractions_of_full_steps_or_integer_steps() -> None:
    assert parse_budget("0.25", 1000) == 250 and parse_budget("2.0", 1000) == 2000 and parse_budget("500", 1000) == 500
    with pytest.raises(Exception, match="at least 2"):
        parse_budget("0.001", 1000)


def test_spearman_and_top1_per_budget() -> None:
    assert spearman(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 30, 40])) == pytest.approx(1.0)
    assert spearman(np.array([1.0, 2, 3, 4]), np.array([4.0, 3, 2, 1])) == pytest.approx(-1.0)
    assert spearman(np.array([1.0, 2, 3]), np.array([1.0, 3, 2])) == pytest.approx(0.5)
    runs = pd.DataFrame({"id": list("abcd"), "schedule": ["x", "y", "x", "y"], "budget": [0.5, 0.5, 1.0, 1.0],
                         "steps": [50, 50, 100, 100], "seed": 0, "fitted": False,
                         "actual": [1.0, 2.0, 1.0, 2.0], "predicted": [1.1, 2.1, 2.5, 2.0]})
    ranks = rankings(Group({"lr": 0.1}, None, 100, runs))  # type: ignore[arg-type]
    assert list(ranks["top1"]) == [True, False] and np.allclose(ranks["spearman"], [1.0, -1.0])
    assert list(ranks["actual_order"]) == ["x > y", "x > y"] and ranks["predicted_order"].iloc[1] == "y > x"
