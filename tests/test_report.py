"""Ranking and rendering on results folders built by hand, where the right answer is known."""

from __future__ import annotations

import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from schedsweep.sweep import store
from schedsweep.errors import ConfigError, ResultsError
from schedsweep.results.render import budget_label, rich_tables, to_text
from schedsweep.results.report import AVG_RANK, best_runs, load_runs, lr_sensitivity, pivot, rank, t_quantile, winners

from helpers import Run, make_sweep









def ranked_for(tmp_path: Path, runs: list[Run], **kw: Any) -> pd.DataFrame:
    return rank(load_runs(make_sweep(tmp_path, runs, **kw)))


def at(ranked: pd.DataFrame, schedule: str, budget: float | int = 1.0) -> pd.Series:
    rows = ranked[(ranked["schedule"] == schedule) & (ranked["budget"] == budget)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def order(ranked: pd.DataFrame, budget: float | int = 1.0) -> list[tuple[str, int]]:
    rows = ranked[ranked["budget"] == budget]
    return list(zip(rows["schedule"], rows["rank"]))


# ---- load_runs


def test_load_runs_columns_plan_order_and_pending(tmp_path: Path) -> None:
    runs = [Run("rex", 0.25, 1.0, extra={"task.d_model": 64}), Run("cosine", 500, status="pending",
            extra={"task.d_model": 128})]
    frame = load_runs(make_sweep(tmp_path, runs))
    assert list(frame.columns) == [
        "id", "task", "optimizer", "schedule", "budget", "steps", "lr", "seed", "task.d_model",
        "status", "final_eval_loss", "final_loss", "best_eval_loss", "steps_done", "wall_s", "error",
        "_lr_digest",  # the LR multipliers' digest: equal ones are one competitor (schedsweep.results.identical)
    ]
    assert list(frame["schedule"]) == ["rex", "cosine"]
    assert list(frame["status"]) == ["done", "pending"]
    assert list(frame["steps"]) == [250, 500]
    assert type(frame["budget"][1]) is int  # 500 steps stays 500, not 500.0
    assert math.isnan(frame["final_eval_loss"][1])


def test_load_runs_rejects_a_folder_that_is_not_a_sweep(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="plan.jsonl"):
        load_runs(tmp_path)


def test_load_runs_names_a_plan_line_without_labels(tmp_path: Path) -> None:
    store.write_plan(tmp_path, [{"id": "abc", "labels": {"task": "charlm"}}])
    with pytest.raises(ResultsError, match="line 1 lacks optimizer, schedule, budget, steps"):
        load_runs(tmp_path)


# ---- rank


def test_clear_winner_per_budget(tmp_path: Path) -> None:
    runs = [Run(s, b, loss + b) for b in (0.25, 1.0) for s, loss in (("rex", 1.0), ("cosine", 1.1), ("linear", 1.2))]
    ranked = ranked_for(tmp_path, runs)
    for b in (0.25, 1.0):
        assert order(ranked, b) == [("rex", 1), ("cosine", 2), ("linear", 3)]
    assert at(ranked, "linear")["gap"] == pytest.approx(0.2)
    assert at(ranked, "linear")["gap_pct"] == pytest.approx(100 * 0.2 / 2.0)
    assert list(ranked["mark"]) == [""] * 6
    assert list(winners(ranked)["schedule"]) == ["rex", "rex"]


def test_different_winner_at_low_and_high_budget(tmp_path: Path) -> None:
    runs = [Run("rex", 0.1, 2.0), Run("cosine", 0.1, 2.5), Run("rex", 1.0, 1.5), Run("cosine", 1.0, 1.2)]
    best = winners(ranked_for(tmp_path, runs))
    assert list(zip(best["budget"], best["schedule"])) == [(0.1, "rex"), (1.0, "cosine")]


def test_exact_ties_share_the_lowest_rank(tmp_path: Path) -> None:
    runs = [Run("rex", 1.0, 1.0), Run("cosine", 1.0, 1.0), Run("linear", 1.0, 1.5)]
    ranked = ranked_for(tmp_path, runs)
    assert order(ranked) == [("cosine", 1), ("rex", 1), ("linear", 3)]
    assert sorted(winners(ranked)["schedule"]) == ["cosine", "rex"]


def test_best_lr_skips_an_lr_with_a_diverged_seed(tmp_path: Path) -> None:
    # At lr 3e-3 one seed is excellent and one diverged: the mean is +inf, so 1e-3 is chosen.
    runs = [Run("rex", lr=3e-3, seed=0, loss=0.5), Run("rex", lr=3e-3, seed=1, status="diverged"),
            Run("rex", lr=1e-3, seed=0, loss=1.0), Run("rex", lr=1e-3, seed=1, loss=1.2),
            Run("cosine", lr=1e-3, seed=0, loss=1.05), Run("cosine", lr=1e-3, seed=1, loss=1.05)]
    row = at(ranked_for(tmp_path, runs), "rex")
    assert row["best_lr"] == 1e-3 and row["mean"] == pytest.approx(1.1) and row["n"] == 2
    assert (row["mark"], row["n_diverged"], row["n_runs"], row["rank"]) == ("", 1, 4, 2)


def test_diverged_at_every_lr_ranks_after_finite_and_missing_ranks_last(tmp_path: Path) -> None:
    runs = [Run("wsd", lr=lr, status="diverged") for lr in (1e-3, 3e-3)]
    runs += [Run("step", lr=lr, status="pending") for lr in (1e-3, 3e-3)]
    runs += [Run(s, lr=lr, loss=loss + lr) for s, loss in (("rex", 1.0), ("cosine", 1.1)) for lr in (1e-3, 3e-3)]
    ranked = ranked_for(tmp_path, runs)
    assert order(ranked) == [("rex", 1), ("cosine", 2), ("wsd", 3), ("step", 4)]
    wsd, step = at(ranked, "wsd"), at(ranked, "step")
    assert (wsd["mark"], wsd["mean"], wsd["gap"], wsd["n_diverged"], wsd["n"]) == ("diverged", math.inf, math.inf, 2, 0)
    assert math.isnan(wsd["best_lr"])
    assert (step["mark"], step["n_missing"], step["n_runs"]) == ("missing", 2, 2)
    assert math.isnan(step["mean"]) and math.isnan(step["gap"])


def test_failed_runs(tmp_path: Path) -> None:
    runs = [Run("rex", loss=1.0), Run("cosine", status="failed"),
            # linear: lr 3e-3 has a failed seed, so the complete lr 1e-3 wins despite its worse mean
            Run("linear", lr=1e-3, seed=0, loss=1.3), Run("linear", lr=1e-3, seed=1, loss=1.3),
            Run("linear", lr=3e-3, seed=0, loss=1.1), Run("linear", lr=3e-3, seed=1, status="failed")]
    ranked = ranked_for(tmp_path, runs)
    assert order(ranked) == [("rex", 1), ("linear", 2), ("cosine", 3)]
    assert (at(ranked, "cosine")["mark"], at(ranked, "cosine")["n_failed"]) == ("failed", 1)
    linear = at(ranked, "linear")
    assert (linear["best_lr"], linear["mean"], linear["mark"], linear["n_failed"]) == (1e-3, 1.3, "", 1)


def test_partial_when_no_lr_has_all_seeds_finished(tmp_path: Path) -> None:
    runs = [Run("rex", seed=0, loss=1.0), Run("rex", seed=1, status="running"), Run("cosine", loss=1.2)]
    ranked = ranked_for(tmp_path, runs)
    rex = at(ranked, "rex")
    assert (rex["mark"], rex["n"], rex["n_missing"], rex["rank"]) == ("partial", 1, 1, 1)


def test_one_seed_has_no_std(tmp_path: Path) -> None:
    row = at(ranked_for(tmp_path, [Run("rex", loss=1.25)]), "rex")
    assert (row["mean"], row["n"]) == (1.25, 1) and math.isnan(row["std"])


def test_many_seeds_mean_and_sample_std(tmp_path: Path) -> None:
    losses = [1.0, 1.1, 1.3, 0.9, 1.2]
    row = at(ranked_for(tmp_path, [Run("rex", seed=i, loss=x) for i, x in enumerate(losses)]), "rex")
    assert row["mean"] == pytest.approx(statistics.mean(losses))
    assert row["std"] == pytest.approx(statistics.stdev(losses))  # ddof=1
    assert row["n"] == 5


def test_lr_not_swept_reports_the_one_lr(tmp_path: Path) -> None:
    runs = [Run("rex", loss=1.0, lr=6e-4), Run("cosine", loss=1.1, lr=6e-4)]
    ranked = ranked_for(tmp_path, runs, swept=())
    assert list(ranked["best_lr"]) == [6e-4, 6e-4]


def test_extra_swept_key_gives_one_ranking_per_setting(tmp_path: Path) -> None:
    runs = [Run(s, loss=loss, extra={"task.d_model": d}) for d, losses in ((64, (1.0, 1.1)), (128, (0.9, 0.8)))
            for s, loss in zip(("rex", "cosine"), losses)]
    ranked = ranked_for(tmp_path, runs)
    assert list(ranked.columns[:3]) == ["task", "optimizer", "task.d_model"]
    best = winners(ranked)
    assert list(zip(best["task.d_model"], best["schedule"])) == [(64, "rex"), (128, "cosine")]
    assert list(ranked["rank"]) == [1, 2, 1, 2]


def test_list_and_null_axis_values_still_name_settings(tmp_path: Path) -> None:
    # betas is a list (unhashable as is); dropout is null in one setting and absent from one run.
    runs = [Run("rex", loss=1.0, extra={"optimizer.betas": [0.9, 0.95], "task.dropout": None}),
            Run("cosine", loss=1.1, extra={"optimizer.betas": [0.9, 0.95], "task.dropout": None}),
            Run("rex", loss=1.2, extra={"optimizer.betas": [0.9, 0.99], "task.dropout": 0.1}),
            Run("cosine", loss=1.0, extra={"optimizer.betas": [0.9, 0.99]})]
    ranked = ranked_for(tmp_path, runs)
    assert list(ranked["optimizer.betas"]) == ["[0.9, 0.95]"] * 2 + ["[0.9, 0.99]"] * 2
    assert list(ranked["rank"]) == [1, 2, 1, 1]  # three settings; the last two hold one run each
    table = pivot(ranked)
    assert len(table) == 4 and len(rich_tables(ranked, table)) == 6
    assert json.loads(to_text(ranked, table, "json"))["ranking"][0]["task.dropout"] is None


def test_budgets_as_fractions_and_steps_are_ordered_by_steps(tmp_path: Path) -> None:
    runs = [Run("rex", b, 1.0) for b in (1.0, 0.1, 500, 0.25)]  # steps 1000, 100, 500, 250
    ranked = ranked_for(tmp_path, runs)
    assert list(ranked["budget"]) == [0.1, 0.25, 500, 1.0]
    assert [budget_label(b) for b in ranked["budget"]] == ["10%", "25%", "500 steps", "100%"]
    assert list(pivot(ranked).columns.get_level_values(0)[::3]) == [0.1, 0.25, 500, 1.0, "avg_rank"]


def test_unknown_metric_and_unmeasured_metric_name_the_choices(tmp_path: Path) -> None:
    runs = load_runs(make_sweep(tmp_path, [Run("rex", loss=1.0)]))
    with pytest.raises(ConfigError, match="final_eval_loss, final_loss, best_eval_loss"):
        rank(runs, "accuracy")
    with pytest.raises(ConfigError, match="rank by one of: final_loss"):
        rank(runs.assign(final_eval_loss=np.nan, best_eval_loss=np.nan))


def test_no_finished_run_lists_every_schedule_marked(tmp_path: Path) -> None:
    runs = [Run("rex", b, status="pending") for b in (0.5, 1.0)] + [Run("cosine", 1.0, status="failed")]
    ranked = ranked_for(tmp_path, runs)
    assert list(zip(ranked["schedule"], ranked["mark"], ranked["rank"])) == [
        ("rex", "missing", 1), ("cosine", "failed", 1), ("rex", "missing", 1)]
    assert winners(ranked).empty
    table = pivot(ranked)
    assert list(table[AVG_RANK]) == [1.0, 1.5]  # cosine never planned at 50%: rank 2 (last) there
    assert table[(0.5, "mark")].tolist() == ["missing", "absent"]
    for fmt in ("md", "csv", "json"):
        assert "missing" in to_text(ranked, table, fmt)


# ---- pivot


def test_pivot_average_rank_counts_missing_runs_against_a_schedule(tmp_path: Path) -> None:
    losses = {"rex": (1.0, 2.0, 1.0), "cosine": (2.0, 1.0, 2.0), "linear": (3.0, 3.0, None)}
    runs = [Run(s, b, loss, status="done" if loss else "pending")
            for s, per_budget in losses.items() for b, loss in zip((0.1, 0.5, 1.0), per_budget)]
    table = pivot(ranked_for(tmp_path, runs))
    assert [key[-1] for key in table.index] == ["rex", "cosine", "linear"]
    assert table[AVG_RANK].tolist() == pytest.approx([4 / 3, 5 / 3, 3.0])
    assert table.loc[("charlm", "adamw", "linear"), (1.0, "mark")] == "missing"
    assert table.xs("rank", axis=1, level="field").loc[("charlm", "adamw", "cosine")].tolist() == [2, 1, 2]


# ---- render


def mixed_sweep(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = [Run(s, b, loss + b, lr=lr, seed=seed) for b in (0.25, 1.0) for lr in (1e-3, 3e-3)
            for seed in (0, 1) for s, loss in (("rex", 1.0 + seed / 10), ("cosine", 1.1))]
    runs += [Run("linear", b, status="diverged", lr=lr) for b in (0.25, 1.0) for lr in (1e-3, 3e-3)]
    runs += [Run("wsd", b, status="pending") for b in (0.25, 1.0)]
    ranked = ranked_for(tmp_path, runs)
    return ranked, pivot(ranked)


def test_markdown_has_ranking_and_pivot_with_marks(tmp_path: Path) -> None:
    md = to_text(*mixed_sweep(tmp_path), "md")
    assert "## task=charlm optimizer=adamw" in md
    # 95% CI half-width over 2 seeds: t(0.975, 1) * std / sqrt(2) = 12.706 * 0.0707 / 1.414 = 0.635
    # Equal means at both LRs: the lower is best, at the grid's low edge. Cosine vs rex, paired over the 2 seeds:
    # d = (0.1, 0), t = 0.05 / (0.0707 / sqrt 2) = 1, one-sided p = 0.25 (df 1): in the best group.
    assert "| 25% | rex | 0.001 | 1.300 ± 0.071 | ±0.64 | 2 | 1 ● | 0 |  | lr edge low |" in md
    assert "|  | cosine | 0.001 | 1.350 ± 0 | ±0 | 2 | 2 ● | +0.050 (+3.8%) | 0.250 | lr edge low |" in md
    assert "|  | linear |  | inf |  | 0 | 3 | inf |  | diverged (2 div) |" in md
    assert "| wsd | missing (4) | missing (4) | 4.00 |" in md


def test_csv_is_the_ranked_frame(tmp_path: Path) -> None:
    ranked, table = mixed_sweep(tmp_path)
    back = pd.read_csv(io.StringIO(to_text(ranked, table, "csv")))
    assert list(back.columns) == list(ranked.columns)
    linear = back[back["schedule"] == "linear"].iloc[0]
    assert linear["mark"] == "diverged" and linear["mean"] == math.inf
    assert back[back["schedule"] == "wsd"]["mark"].tolist() == ["missing", "missing"]


def test_json_has_nulls_for_non_finite_numbers(tmp_path: Path) -> None:
    doc = json.loads(to_text(*mixed_sweep(tmp_path), "json"))
    assert doc["metric"] == "final_eval_loss"
    linear = next(r for r in doc["ranking"] if r["schedule"] == "linear")
    assert (linear["mean"], linear["gap"], linear["mark"], linear["rank"]) == (None, None, "diverged", 3)
    wsd = next(r for r in doc["pivot"] if r["schedule"] == "wsd")
    assert [(b["label"], b["mean"], b["rank"], b["mark"]) for b in wsd["budgets"]] == [
        ("25%", None, 4, "missing"), ("100%", None, 4, "missing")]


def test_unknown_format_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="md, csv, json, latex"):
        to_text(*mixed_sweep(tmp_path), "xlsx")


def test_rich_tables_fit_100_columns_and_show_marks(tmp_path: Path) -> None:
    tables = rich_tables(*mixed_sweep(tmp_path))
    assert len(tables) == 2  # one setting: its ranking, then its pivot
    console = Console(width=100, record=True, file=io.StringIO())
    for table in tables:
        console.print(table)
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 100
    for expected in ("1.300 ± 0.071", "±0.64", "+0.050 (+3.8%)", "diverged (2 div)", "missing (1 miss)", "1.300 (1)",
                     "diverged (3)", "avg rank", "95% CI"):
        assert expected in text
    assert "…" not in text  # nothing truncated


# ---- properties of rank on arbitrary outcomes (frames built directly: no files, fast)

OUTCOMES = st.one_of(st.sampled_from(["diverged", "failed", "pending", "running"]),
                     st.floats(0.5, 3.0, allow_nan=False))


def outcome_frame(outcomes: list[list[Any]], lrs: list[float], digits: int | None = None) -> pd.DataFrame:
    """A load_runs-like frame: schedule i, lr lrs[j // 2], seed j % 2; a float outcome is a done run's loss."""
    rows = []
    for i, per_schedule in enumerate(outcomes):
        for j, outcome in enumerate(per_schedule):
            done = isinstance(outcome, float)
            loss = (round(outcome, digits) if digits is not None else outcome) if done else math.nan
            rows.append({"id": f"{i}{j}", "task": "t", "optimizer": "o", "schedule": f"s{i}", "budget": 1.0,
                         "steps": 10, "lr": lrs[j // 2], "seed": j % 2, "status": "done" if done else outcome,
                         "final_eval_loss": loss, "final_loss": loss, "best_eval_loss": loss,
                         "steps_done": 10, "wall_s": 0.0, "error": None})
    return pd.DataFrame(rows)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(OUTCOMES, min_size=4, max_size=4), min_size=1, max_size=5))
def test_rank_lists_every_schedule_once_and_orders_by_status(outcomes: list[list[Any]]) -> None:
    ranked = rank(outcome_frame(outcomes, [1e-3, 3e-3]))  # 2 lrs x 2 seeds per schedule
    assert sorted(ranked["schedule"]) == sorted(f"s{i}" for i in range(len(outcomes)))
    tier = np.where(np.isfinite(ranked["mean"]), 0, np.where(ranked["mark"] == "diverged", 1, 2))
    assert list(tier) == sorted(tier) and list(ranked["rank"]) == sorted(ranked["rank"])
    assert ranked["rank"].min() == 1
    finite = ranked[tier == 0]
    if len(finite):
        assert finite["mean"].iloc[0] == finite["mean"].min() and (finite["gap"] >= 0).all()
    assert (ranked["n_runs"] == 4).all()
    assert (ranked[["n_diverged", "n_failed", "n_missing"]].sum(axis=1) <= 4).all()


# ---- confidence intervals, maximize, every LR, the runs behind the best LR


def t_cdf(t: float, df: int, n: int = 20_000) -> float:
    """Student t CDF by Simpson's rule on the density (no scipy), for checking the quantile table."""
    x = np.linspace(0.0, t, n + 1)
    c = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    pdf = c * (1 + x**2 / df) ** (-(df + 1) / 2)
    return 0.5 + (x[1] - x[0]) / 3 * (pdf[0] + pdf[-1] + 4 * pdf[1:-1:2].sum() + 2 * pdf[2:-1:2].sum())


@pytest.mark.parametrize("df", [1, 2, 4, 9, 30, 31, 60, 200])
def test_t_quantile_is_the_975th_percentile(df: int) -> None:
    assert t_cdf(t_quantile(df), df) == pytest.approx(0.975, abs=2e-5)


def test_ci95_over_seeds(tmp_path: Path) -> None:
    losses = [1.0, 1.1, 1.3, 0.9, 1.2]
    row = at(ranked_for(tmp_path, [Run("rex", seed=i, loss=x) for i, x in enumerate(losses)]), "rex")
    assert row["ci95"] == pytest.approx(2.7764 * statistics.stdev(losses) / math.sqrt(5))
    one = at(ranked_for(tmp_path / "one", [Run("rex", loss=1.0)]), "rex")
    assert math.isnan(one["ci95"])


def test_maximize_ranks_the_highest_first_and_diverged_still_last(tmp_path: Path) -> None:
    runs = [Run("rex", loss=0.9), Run("cosine", loss=0.8), Run("linear", status="diverged"), Run("wsd", status="pending"),
            Run("step", lr=1e-3, loss=0.5), Run("step", lr=3e-3, loss=0.85)]
    ranked = rank(load_runs(make_sweep(tmp_path, runs)), maximize=True)
    assert order(ranked) == [("rex", 1), ("step", 2), ("cosine", 3), ("linear", 4), ("wsd", 5)]
    assert at(ranked, "step")["best_lr"] == 3e-3 and at(ranked, "step")["mean"] == 0.85
    assert at(ranked, "cosine")["gap"] == pytest.approx(0.1) and at(ranked, "cosine")["gap_pct"] == pytest.approx(100 / 9)
    assert at(ranked, "linear")["mean"] == -math.inf and ranked.attrs["maximize"] is True


def test_sensitivity_lists_every_lr(tmp_path: Path) -> None:
    runs = [Run("rex", lr=lr, seed=s, loss=loss + s / 10) for lr, loss in ((1e-3, 1.0), (3e-3, 0.8)) for s in (0, 1)]
    runs += [Run("rex", lr=1e-2, seed=0, status="diverged"), Run("rex", lr=1e-2, seed=1, loss=0.7)]
    sens = lr_sensitivity(load_runs(make_sweep(tmp_path, runs)))
    assert sens["lr"].tolist() == [1e-3, 3e-3, 1e-2]
    assert sens["mean"].tolist() == pytest.approx([1.05, 0.85, math.inf])
    assert sens["n_diverged"].tolist() == [0, 0, 1] and sens["n_runs"].tolist() == [2, 2, 2]


def test_best_runs_are_the_finished_seeds_of_the_best_lr(tmp_path: Path) -> None:
    runs = [Run("rex", lr=lr, seed=s, loss=loss) for lr, loss in ((1e-3, 1.0), (3e-3, 0.8)) for s in (0, 1)]
    runs += [Run("cosine", lr=3e-3, seed=0, loss=0.9), Run("cosine", lr=3e-3, seed=1, status="running"),
             Run("wsd", status="failed")]
    runs_frame = load_runs(make_sweep(tmp_path, runs))
    ranked = rank(runs_frame)
    best = best_runs(runs_frame, ranked)
    assert sorted(zip(best["schedule"], best["lr"], best["seed"])) == [("cosine", 3e-3, 0), ("rex", 3e-3, 0), ("rex", 3e-3, 1)]
    assert set(best["_cell"]) == {ranked.index[ranked["schedule"] == s][0] for s in ("rex", "cosine")}


def test_latex_escapes_and_uses_booktabs(tmp_path: Path) -> None:
    tex = to_text(*mixed_sweep(tmp_path), "latex")
    assert tex.count(r"\begin{tabular}") == 2 and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"final\_eval\_loss" in tex and r"1.300 $\pm$ 0.071" in tex and r"\textbf{rex}" in tex and r"25\%" in tex


def reference_best(runs: pd.DataFrame) -> dict[tuple[str, Any], tuple[float, float, str]]:
    """rank()'s documented choice of best LR, the slow way: (best_lr, mean, mark) per (schedule, budget)."""
    out = {}
    for (schedule, budget), cell in runs.groupby(["schedule", "budget"]):
        score = cell["final_eval_loss"].where(cell["status"] == "done").mask(cell["status"] == "diverged", np.inf)
        options = []
        for lr, g in cell.assign(score=score).groupby("lr"):
            s = g["score"].dropna()
            if len(s) and math.isfinite(s.mean()):
                options.append((not len(s) == len(g), s.mean(), lr))
        if options:
            partial, mean, lr = min(options)
            out[(schedule, budget)] = (lr, mean, "partial" if partial else "")
    return out


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(OUTCOMES, min_size=6, max_size=6), min_size=1, max_size=4))
def test_rank_best_lr_matches_a_slow_reference(outcomes: list[list[Any]]) -> None:
    frame = outcome_frame(outcomes, [1e-3, 3e-3, 1e-2], digits=1)  # 3 lrs x 2 seeds; rounding makes ties likely
    ranked = rank(frame).set_index("schedule")
    expected = reference_best(frame)
    for schedule in ranked.index:
        got = ranked.loc[schedule]
        if (schedule, 1.0) in expected:
            lr, mean, mark = expected[(schedule, 1.0)]
            assert (got["best_lr"], got["mark"]) == (lr, mark) and got["mean"] == pytest.approx(mean)
        else:
            assert math.isnan(got["best_lr"]) and got["mark"] in ("diverged", "failed", "missing")
