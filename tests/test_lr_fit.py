"""`report --fit-lr`: lr* from a quadratic in log LR, its CI, inside the grid or not, and its power law in steps."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_report import Run
from test_statistics import report, row, sweep_of

from schedsweep.results import lr_fit

GRID = tuple(1e-3 * 3.0**k for k in range(5))  # 1e-3 .. 8.1e-2, x3


def parabola(lr: float, star: float, depth: float = 1.0, curvature: float = 0.2) -> float:
    return depth + curvature * (math.log(lr) - math.log(star)) ** 2


@settings(max_examples=60, deadline=None)
@given(st.floats(math.log(GRID[0]), math.log(GRID[-1])), st.floats(0.01, 5.0), st.floats(-3.0, 3.0))
def test_a_parabola_in_log_lr_gives_back_its_minimum(log_star: float, curvature: float, depth: float) -> None:
    lrs = np.array(GRID)
    means = np.array([parabola(lr, math.exp(log_star), depth, curvature) for lr in lrs])
    fit = lr_fit.quadratic_minimum(lrs, means)
    assert fit["lr_star"] == pytest.approx(math.exp(log_star), rel=1e-6)


def test_a_concave_fit_has_no_minimum() -> None:
    lrs = np.array(GRID[:3])
    assert math.isnan(lr_fit.quadratic_minimum(lrs, -np.log(lrs) ** 2)["lr_star"])


def test_the_ci_covers_the_minimum_and_narrows_with_more_seeds() -> None:
    lrs, star = np.array(GRID), 5e-3
    means = np.array([parabola(lr, star) for lr in lrs])
    wide = lr_fit.quadratic_minimum(lrs, means, np.full(5, 0.05))
    narrow = lr_fit.quadratic_minimum(lrs, means, np.full(5, 0.01))
    assert wide["lr_star_low"] < star < wide["lr_star_high"]
    assert narrow["lr_star_high"] / narrow["lr_star_low"] < wide["lr_star_high"] / wide["lr_star_low"]
    assert wide["lr_weights"] == "seeds"


def test_fit_lr_through_the_cli_recovers_the_parabola_and_its_power_law(tmp_path: Path) -> None:
    # Two budgets with lr* = 0.02 * (steps / 50)^-0.5: 20 steps -> 0.0316, 50 steps -> 0.02; three seeds of noise.
    runs = []
    rng = np.random.default_rng(0)
    for budget, steps in ((20, 20), (50, 50)):
        star = 0.02 * (steps / 50) ** -0.5
        for lr in GRID:
            for seed in range(3):
                runs.append(Run("cosine", budget, parabola(lr, star) + float(rng.normal(0, 1e-4)), lr=lr, seed=seed))
        runs.append(Run("linear", budget, 2.0, lr=GRID[0]))  # one LR: no fit
    sweep = sweep_of(tmp_path, runs)
    text = report(sweep, "--fit-lr", "--format", "csv", "--table", "ranking")
    ranking = pd.read_csv(io.StringIO(text))
    cosine = ranking[ranking["schedule"] == "cosine"].set_index("steps")
    assert cosine.loc[20, "lr_star"] == pytest.approx(0.02 * 0.4**-0.5, rel=0.02)
    assert cosine.loc[50, "lr_star"] == pytest.approx(0.02, rel=0.02)
    assert ranking[ranking["schedule"] == "linear"]["lr_star"].isna().all()
    fit = pd.read_csv(io.StringIO(report(sweep, "--fit-lr", "--format", "csv", "--table", "lr_fit")))
    assert fit[fit["schedule"] == "cosine"]["lr_star_inside"].all()
    assert (fit[fit["schedule"] == "cosine"]["lr_star_low"] < fit[fit["schedule"] == "cosine"]["lr_star"]).all()
    law = pd.read_csv(io.StringIO(report(sweep, "--fit-lr", "--format", "csv", "--table", "lr_law")))
    cos = law[law["schedule"] == "cosine"].iloc[0]
    assert cos["exponent"] == pytest.approx(-0.5, abs=0.03) and cos["budgets"] == 2
    md = report(sweep, "--fit-lr", "--format", "md")
    assert "## Fitted peak LR (--fit-lr)" in md and "## Fitted peak LR against the budget (--fit-lr)" in md
    assert "lr_star" not in report(sweep, "--format", "csv", "--table", "ranking")  # only with --fit-lr


def test_a_best_lr_at_the_edge_fits_outside_the_grid_and_diverged_lrs_stay_out(tmp_path: Path) -> None:
    star = GRID[-1] * 3
    runs = [Run("cosine", 1.0, parabola(lr, star), lr=lr) for lr in GRID[:-1]]
    runs.append(Run("cosine", 1.0, None, status="diverged", lr=GRID[-1] * 9))
    runs.append(Run("rex", 1.0, parabola(GRID[2], GRID[2]), lr=GRID[2]))
    sweep = sweep_of(tmp_path, runs)
    fit = pd.read_csv(io.StringIO(report(sweep, "--fit-lr", "--format", "csv", "--table", "lr_fit")))
    cosine = row(fit, schedule="cosine")
    assert cosine["lr_points"] == 3 and not cosine["lr_star_inside"]
    assert cosine["lr_star"] == pytest.approx(star, rel=1e-4)
    assert row(fit, schedule="rex")["lr_points"] == 1 and math.isnan(row(fit, schedule="rex")["lr_star"])
