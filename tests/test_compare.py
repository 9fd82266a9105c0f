"""The cross-setting tables on ranked frames built by hand, and AlgoPerf's score on schedules.md §14.5."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import Run, make_sweep

from schedsweep.results import compare
from schedsweep.errors import ConfigError
from schedsweep.results.report import build, load_runs, rank

INF = math.inf


def ranked_from(rows: list[tuple[str, object, int, str, float]], maximize: bool = False) -> pd.DataFrame:
    """A ranked frame from (optimizer, budget, steps, schedule, mean) rows; ranks as rank() gives them."""
    frame = pd.DataFrame(rows, columns=["optimizer", "budget", "steps", "schedule", "mean"])
    frame.insert(0, "task", "t")
    frame["budget"] = pd.Series([r[1] for r in rows], dtype=object)
    oriented = -frame["mean"] if maximize else frame["mean"]
    finite = np.isfinite(frame["mean"])
    by = frame.assign(_m=oriented.where(finite)).groupby(["optimizer", "budget", "steps"], sort=False)["_m"]
    n_finite = frame.assign(_f=finite).groupby(["optimizer", "budget", "steps"], sort=False)["_f"].transform("sum")
    frame["rank"] = np.where(finite, by.rank(method="min"), n_finite + 1).astype(int)
    frame["mark"] = np.where(np.isinf(frame["mean"]), "diverged", np.where(frame["mean"].isna(), "missing", ""))
    frame.attrs.update(maximize=maximize, metric="final_eval_loss")
    return frame


# 2 optimizers x budgets 10%, 25%, 100%; three schedules.
ROWS = [
    ("sgd", 0.1, 100, "rex", 1.0), ("sgd", 0.1, 100, "linear", 1.1), ("sgd", 0.1, 100, "cosine", 1.2),
    ("sgd", 0.25, 250, "rex", 1.0), ("sgd", 0.25, 250, "linear", 1.0), ("sgd", 0.25, 250, "cosine", 1.3),
    ("sgd", 1.0, 1000, "rex", 0.9), ("sgd", 1.0, 1000, "linear", 0.8), ("sgd", 1.0, 1000, "cosine", INF),
    ("adamw", 0.1, 100, "rex", 2.0), ("adamw", 0.1, 100, "linear", 2.2), ("adamw", 0.1, 100, "cosine", 2.1),
    ("adamw", 0.25, 250, "rex", 2.0), ("adamw", 0.25, 250, "linear", 1.9), ("adamw", 0.25, 250, "cosine", np.nan),
    ("adamw", 1.0, 1000, "rex", 1.8), ("adamw", 1.0, 1000, "linear", 1.6), ("adamw", 1.0, 1000, "cosine", 1.7),
]


def test_budget_fraction_of_fractions_and_of_step_budgets() -> None:
    ranked = ranked_from([("sgd", 500, 500, "rex", 1.0), ("sgd", 2000, 2000, "rex", 1.0), ("sgd", 0.25, 250, "rex", 1.0)])
    assert list(compare.budget_fraction(ranked)) == [0.25, 1.0, 0.25]
    assert compare.fraction_notes(ranked) and not compare.fraction_notes(ranked_from(ROWS))


def test_average_rank_per_budget_across_settings() -> None:
    ranked = ranked_from(ROWS)
    assert list(ranked["rank"][:9]) == [1, 2, 3, 1, 1, 3, 2, 1, 3]
    table = compare.rank_by_budget(ranked)
    assert list(table.index) == ["linear", "rex", "cosine"]  # by average over all 6 problems
    assert list(table.columns) == [0.1, 0.25, 1.0, "all", "n"]
    assert table.loc["rex", 0.1] == 1.0 and table.loc["rex", 0.25] == 1.5 and table.loc["rex", 1.0] == 2.5
    assert table.loc["linear", "all"] == pytest.approx((2 + 1 + 1 + 3 + 1 + 1) / 6)
    assert table.loc["cosine", 0.25] == 3.0 and table["n"].tolist() == [6, 6, 6]
    by_optimizer = compare.rank_by_budget(ranked, by=("optimizer",))
    assert by_optimizer.loc[("adamw", "cosine"), 0.1] == 2.0


def test_top1_and_top3_shares_low_and_high_budgets() -> None:
    table = compare.top_k(ranked_from(ROWS))
    rex, linear, cosine = (table.loc[s] for s in ("rex", "linear", "cosine"))
    # REX Table 1: low budgets are < 25% (here 10%: 2 problems, rex first in both); 25% is high.
    assert (rex["low_top1"], rex["n_low"], linear["low_top1"]) == (100.0, 2, 0.0)
    # high (25%, 100%): 4 problems; linear first in all four (one a tie with rex at sgd 25%)
    assert (rex["high_top1"], rex["n_high"], linear["high_top1"], cosine["high_top1"]) == (25.0, 4, 100.0, 0.0)
    # cosine is never Top-1; in the first three wherever it has a finite result (4 of 6)
    assert cosine["all_top3"] == pytest.approx(100 * 4 / 6) and cosine["all_top1"] == 0.0
    assert list(table.index) == ["linear", "rex", "cosine"]


def test_ratio_to_linear_per_problem_and_its_summary() -> None:
    ranked = ranked_from(ROWS + [("nesterov", 1.0, 1000, "rex", 1.0)])  # a setting without linear
    ratios = compare.ratio_to_baseline(ranked, "linear")
    assert list(ratios.columns) == ["rex", "cosine"] and len(ratios) == 6
    assert ratios.loc[("t", "sgd", 0.1), "rex"] == pytest.approx(1 / 1.1)
    assert ratios.loc[("t", "sgd", 1.0), "cosine"] == INF  # diverged
    assert math.isnan(ratios.loc[("t", "adamw", 0.25), "cosine"])  # missing
    assert ratios.attrs["notes"] == ["Ratios to linear: 6 of 7 problems; 1 have no 'linear' runs."]
    summary = compare.ratio_summary(ratios)
    assert summary.loc["rex"].to_dict() == pytest.approx(
        {"n": 6, "better": 2, "equal": 1, "worse": 3, "geomean": float(np.exp(np.mean(np.log(
            [1 / 1.1, 1.0, 0.9 / 0.8, 2 / 2.2, 2 / 1.9, 1.8 / 1.6])))), "best": 1 / 1.1, "worst": 0.9 / 0.8})
    assert (summary.loc["cosine", "n"], summary.loc["cosine", "worse"]) == (5, 4)
    none = compare.ratio_to_baseline(ranked, "wsd")
    assert none.empty and "No ratio table: 'wsd' was not swept" in none.attrs["notes"][0]  # not 'no finite result'


# schedules.md §14.5: 3 submissions x 4 workloads, times to target (lower is better).
TIMES = pd.DataFrame({"A": [100, 200, 300, 400], "B": [150, 180, INF, 500], "C": [120, 400, 330, 390]}, dtype=float)


def test_performance_ratios_and_scores_match_the_reference_values() -> None:
    ratios = compare.performance_ratios(TIMES)
    assert ratios["A"].tolist() == pytest.approx([1, 1.1111111, 1, 1.0256410])
    assert ratios["B"].tolist() == pytest.approx([1.5, 1, INF, 1.2820513])
    assert ratios["C"].tolist() == pytest.approx([1.2, 2.2222222, 1.1, 1])
    exact = compare.profile_scores(ratios, r_max=4)["score"]
    assert exact.to_dict() == pytest.approx({"A": 0.988604, "B": 0.684829, "C": 0.873148}, abs=1e-6)
    trapezoid = compare.profile_scores(ratios, r_max=4, method="trapezoid")["score"]
    assert trapezoid.to_dict() == pytest.approx({"A": 0.989899, "B": 0.684343, "C": 0.872475}, abs=1e-6)
    assert list(exact.index) == ["A", "C", "B"]


def test_profile_is_the_share_within_tau() -> None:
    rho = compare.profile(compare.performance_ratios(TIMES), r_max=4, points=7)  # tau = 1, 1.5, ..., 4
    assert rho.index.tolist() == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    assert rho["A"].tolist() == [0.5, 1, 1, 1, 1, 1, 1]
    assert rho["B"].tolist() == [0.25, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75]
    assert rho["C"].tolist() == [0.25, 0.75, 0.75, 1, 1, 1, 1]


def test_performance_on_a_ranked_frame_and_when_maximizing() -> None:
    ratios = compare.performance_ratios(ranked_from(ROWS))
    assert ratios.loc[("t", "sgd", 0.1)].tolist() == pytest.approx([1, 1.1, 1.2])
    assert ratios.loc[("t", "sgd", 1.0), "cosine"] == INF and ratios.loc[("t", "adamw", 0.25), "cosine"] == INF
    accuracy = ranked_from([("sgd", 1.0, 10, "rex", 0.8), ("sgd", 1.0, 10, "linear", 0.4), ("sgd", 1.0, 10, "step", -INF)],
                           maximize=True)
    assert compare.performance_ratios(accuracy).iloc[0].tolist() == [1.0, 2.0, INF]
    zero = compare.performance_ratios(ranked_from([("sgd", 1.0, 10, "rex", 0.0), ("sgd", 1.0, 10, "linear", 0.5)]))
    assert zero.empty and "1 of 1 problems left out" in zero.attrs["notes"][0]


def test_build_on_a_sweep_and_r_max_must_exceed_1(tmp_path: Path) -> None:
    runs = [Run(s, b, loss * b) for b in (0.1, 1.0) for s, loss in (("linear", 1.0), ("rex", 0.9))]
    rep = build(load_runs(make_sweep(tmp_path, runs)))
    assert list(rep.by_budget.index) == ["rex", "linear"] and rep.performance.loc["rex", "score"] == 1.0
    assert rep.performance.loc["linear", "score"] == 0.0  # 1 / 0.9 = 1.11 > r_max = 1.1 at both budgets
    assert rep.ratios["rex"].tolist() == pytest.approx([0.9, 0.9])
    with pytest.raises(ConfigError, match="--r-max must be greater than 1"):
        build(load_runs(tmp_path), r_max=1.0)
    assert rank(load_runs(tmp_path), maximize=True)["schedule"].tolist()[:2] == ["linear", "rex"]
