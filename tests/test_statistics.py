"""Issue 19: the report's statistics as the papers define them, through `schedsweep report` itself.

Each sweep is built by hand (plan.jsonl and status.json files, as tests/test_report.py does) with the
plan's schedule specs taken from conf/schedule/, so the identical-schedule check sees real shapes; the
report runs in process through the CLI (collect, rank, render), as a user runs it.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import Run, make_sweep
from typer.testing import CliRunner

from schedsweep import schedules
from schedsweep.cli import app
from schedsweep.plan.point import without_labels
from schedsweep.results import caveats, significance
from schedsweep.sweep import store
from schedsweep.sweep import run_folder


def sweep_of(root: Path, runs: list[Run]) -> Path:
    """make_sweep, with each run's schedule spec the shipped conf/schedule/NAME.yaml (labels dropped); an
    `optimizer` extra names the run's optimizer (a setting, as in the rex study)."""
    make_sweep(root, runs)
    records = store.read_plan(root)
    for record in records:
        record["spec"]["schedule"] = without_labels(schedules.load(record["labels"]["schedule"]))
        if "optimizer" in record["labels"]["axes"]:
            record["labels"]["optimizer"] = record["labels"]["axes"].pop("optimizer")
            record["spec"]["optimizer"] = {"_target_": "torch.optim.AdamW", "lr": record["labels"]["lr"]}
    store.write_plan(root, records)
    return root


def report(sweep: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["report", str(sweep), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def table(sweep: Path, name: str) -> pd.DataFrame:
    """One table of the report, from its CSV; empty text cells read as "" (numbers stay NaN)."""
    frame = pd.read_csv(io.StringIO(report(sweep, "--format", "csv", "--table", name)))
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) or column in ("same_as", "p_test", "lr_edge"):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), "")
    return frame


def row(frame: pd.DataFrame, **where: Any) -> dict[str, Any]:
    mask = pd.Series(True, index=frame.index)
    for key, value in where.items():
        mask &= frame[key].astype(str) == str(value)
    rows = frame[mask]
    assert len(rows) == 1, rows
    return rows.iloc[0].to_dict()


# ---- 1. Top-k split: REX's Table 1 has 25% among the high budgets


def test_top_k_low_budgets_are_strictly_below_25_percent(tmp_path: Path) -> None:
    # rex wins at 10% and 25%, linear at 100%
    losses = {0.1: (1.0, 1.1), 0.25: (1.0, 1.1), 1.0: (1.1, 1.0)}
    runs = [Run(s, b, loss) for b, pair in losses.items() for s, loss in zip(("rex", "linear"), pair)]
    top = table(sweep_of(tmp_path, runs), "topk").set_index("schedule")
    assert (top.loc["rex", "n_low"], top.loc["rex", "n_high"]) == (1, 2)  # 10% low; 25% and 100% high
    assert (top.loc["rex", "low_top1"], top.loc["rex", "high_top1"]) == (100.0, 50.0)
    assert top.loc["linear", "high_top1"] == 50.0
    # the cross-setting tables print from two settings on (one setting's own tables say it all)
    two = sweep_of(tmp_path / "two", runs + [Run(r.schedule, r.budget, r.loss, extra={"optimizer": "sgd"}) for r in runs])
    assert "low (<25%) | high (≥25%)" in report(two, "--format", "md")
    one = sweep_of(tmp_path / "one", [r for r in runs if r.budget == 1.0])  # one problem: nothing to compare across
    assert "low (<25%)" not in report(one, "--format", "md") and "## The answer" in report(one, "--format", "md")


# ---- 2. Identical schedules are one competitor


def test_a_schedule_identical_at_a_budget_is_reported_as_the_other(tmp_path: Path) -> None:
    # At 5 steps WSD's 5% warm-up and 20% cooldown round to 0 steps: it is constant, step for step.
    assert schedules.values(schedules.load("wsd"), 5) == schedules.values(schedules.load("constant"), 5)
    runs = [Run(s, b, loss + seed / 100, seed=seed) for seed in (0, 1, 2)
            for b, per in ((0.005, {"constant": 1.0, "wsd": 1.0, "linear": 1.2}),
                           (1.0, {"constant": 1.3, "wsd": 1.1, "linear": 1.2})) for s, loss in per.items()]
    sweep = sweep_of(tmp_path, runs)
    ranking = table(sweep, "ranking")
    wsd = row(ranking, budget=0.005, schedule="wsd")
    assert (wsd["same_as"], wsd["rank"]) == ("constant", 1)
    assert row(ranking, budget=0.005, schedule="linear")["rank"] == 2  # not 3: constant and wsd are one
    assert row(ranking, budget=1.0, schedule="wsd")["same_as"] == ""
    top = table(sweep, "topk").set_index("schedule")
    # counted once: the 0.5% problem is constant's alone
    assert (top.loc["wsd", "n_all"], top.loc["wsd", "all_top1"], top.loc["constant", "n_all"]) == (1, 100.0, 2)
    assert top.loc["constant", "low_top1"] == 100.0 and top.loc["wsd", "same_as"] == "constant"
    budgets = table(sweep, "budgets").set_index("schedule")
    assert budgets.loc["linear", "0.5%"] == 2.0 and budgets.loc["wsd", "n"] == 1
    assert "= constant" in report(sweep, "--format", "md")


def test_a_schedule_planned_once_under_two_names_is_named_and_listed(tmp_path: Path) -> None:
    mine = tmp_path / "mine" / "schedule"
    mine.mkdir(parents=True)
    (mine / "linear_twin.yaml").write_text((Path(schedules.__file__).parents[2] / "conf/schedule/linear.yaml")
                                           .read_text())
    runner = CliRunner()
    launched = runner.invoke(app, ["launch", "--config-dir", str(tmp_path / "mine"), "task=quadratic", "full_steps=20",
                                   "schedule=linear,linear_twin,constant", "budget=1.0", "seed=0,1", "executor=debug",
                                   "--results", str(tmp_path / "results"), "--name", "twin"])
    assert launched.exit_code == 0, launched.output
    assert "linear_twin = linear: planned once (2 grid points)" in launched.stdout
    sweep = tmp_path / "results" / "twin"
    assert [r.get("aliases") for r in store.read_plan(sweep)].count(["linear_twin"]) == 2
    ranking = table(sweep, "ranking")
    twin, linear = row(ranking, schedule="linear_twin"), row(ranking, schedule="linear")
    assert twin["same_as"] == "linear" and (twin["rank"], twin["mean"]) == (linear["rank"], linear["mean"])
    assert table(sweep, "topk").set_index("schedule").loc["linear_twin", "n_all"] == 0


# ---- 3. Significance: the best group, paired over seeds


def test_best_group_pairs_seeds_and_p_vs_best(tmp_path: Path) -> None:
    scores = {"rex": (1.0, 1.1, 1.2),        # the winner
              "linear": (1.05, 1.15, 1.25),  # +0.05 at every seed: significant paired (Welch would not see it)
              "cosine": (1.3, 1.0, 1.1)}     # d = (0.3, -0.1, -0.1): within noise
    runs = [Run(s, 1.0, v, seed=seed) for s, values in scores.items() for seed, v in enumerate(values)]
    runs += [Run("step", 1.0, v, seed=seed) for seed, v in zip((5, 6, 7), (1.3, 1.4, 1.5))]  # shares no seed
    sweep = sweep_of(tmp_path, runs)
    ranking = table(sweep, "ranking")
    rex, linear, cosine, step = (row(ranking, schedule=s) for s in ("rex", "linear", "cosine", "step"))
    assert rex["best_group"] and math.isnan(rex["p_vs_best"])
    assert (bool(linear["best_group"]), linear["p_test"]) == (False, "paired t") and linear["p_vs_best"] < 1e-12
    t = (0.1 / 3) / (math.sqrt(((0.3 - 0.1 / 3) ** 2 + 2 * (0.1 + 0.1 / 3) ** 2) / 2) / math.sqrt(3))
    assert float(cosine["p_vs_best"]) == pytest.approx(0.5 * (1 - t / math.sqrt(t * t + 2)))  # t(df=2) tail
    assert cosine["best_group"] and cosine["p_test"] == "paired t"
    assert step["p_test"] == "Welch t" and step["p_vs_best"] < 0.05 and not step["best_group"]
    top = table(sweep, "topk").set_index("schedule")
    assert (top.loc["cosine", "all_best"], top.loc["linear", "all_best"]) == (100.0, 0.0)
    md = report(sweep, "--format", "md")
    assert "| 100% | rex | 0.001 | 1.100 ± 0.1 | ±0.25 | 3 | 1 ● | 0 |  | " in md
    assert "| cosine |" in md and "| 2 ● |" in md and "| 3 | +0.050 (+4.5%) | <0.001 |" in md


def test_one_seed_has_no_test_and_the_best_group_is_the_winner(tmp_path: Path) -> None:
    sweep = sweep_of(tmp_path, [Run("rex", 1.0, 1.0), Run("linear", 1.0, 1.0001)])
    ranking = table(sweep, "ranking")
    linear = row(ranking, schedule="linear")
    assert not linear["best_group"] and math.isnan(linear["p_vs_best"]) and linear["p_test"] == ""
    assert "no significance test (fewer than 2 seeds)" in report(sweep, "--format", "md")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=6),
       st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=6), st.floats(0.01, 5))
def test_p_worse_properties(x: list[float], noise: list[float], shift: float) -> None:
    n = min(len(x), len(noise))
    best = {i: x[i] for i in range(n)}
    other = {i: x[i] + noise[i] for i in range(n)}
    p, test = significance.p_worse(other, best)
    assert test == significance.PAIRED and 0.0 <= p <= 1.0
    back, _ = significance.p_worse(best, other)
    diffs = [other[i] - best[i] for i in range(n)]
    if len(set(diffs)) > 1:  # a t statistic exists: the two one-sided tails add to 1
        assert p + back == pytest.approx(1.0)
        worse, _ = significance.p_worse({i: v + shift for i, v in other.items()}, best)
        assert worse <= p + 1e-9  # a schedule made worse at every seed is never more plausibly as good


# ---- 4. Grid edges


def test_lr_edge_flags_a_best_lr_at_the_grid_edge(tmp_path: Path) -> None:
    grid = (1e-3, 3e-3, 1e-2)
    loss = {"rex": (3.0, 2.0, 1.0), "linear": (2.0, 1.0, 2.0), "cosine": (1.0, 2.0, 3.0)}
    runs = [Run(s, 1.0, v, lr=lr) for s, values in loss.items() for lr, v in zip(grid, values)]
    runs.append(Run("step", 1.0, 1.5, lr=1e-2))  # one LR: no grid, no edge
    sweep = sweep_of(tmp_path, runs)
    ranking = table(sweep, "ranking")
    assert {s: row(ranking, schedule=s)["lr_edge"] for s in ("rex", "linear", "cosine", "step")} == \
        {"rex": "high", "linear": "", "cosine": "low", "step": ""}
    md = report(sweep, "--format", "md")
    assert "Best peak LR at the edge of its grid in 2 of 4 cells (1 at the top, 1 at the bottom)" in md
    assert "charlm adamw 100% cosine (low); charlm adamw 100% rex (high)." in md


# ---- 5. Degenerate problems


def test_degenerate_problems_are_counted_and_listed(tmp_path: Path) -> None:
    runs = [Run(s, 0.01, v + seed / 10, seed=seed) for seed in (0, 1, 2)  # 10 steps: short
            for s, v in (("rex", 1.0), ("linear", 2.0))]
    runs += [Run(s, 1.0, v, seed=seed) for s, values in (("rex", (1.0, 1.2, 1.1)), ("linear", (1.2, 1.0, 1.15)))
             for seed, v in enumerate(values)]  # within noise of each other
    runs += [Run(s, 0.5, v + seed / 100, seed=seed) for seed in (0, 1, 2) for s, v in (("rex", 1.0), ("linear", 1.5))]
    sweep = sweep_of(tmp_path, runs)
    problems = table(sweep, "problems")
    assert problems["degenerate"].tolist() == ["short", "", "within noise"]
    assert problems["steps"].tolist() == [10, 500, 1000] and caveats.MIN_STEPS == 20
    md = report(sweep, "--format", "md")
    assert "Degenerate problems, 2 of 3" in md and "charlm adamw 1% (10 steps: short)" in md
    # the cross-setting tables (from two settings on) say how many of their problems are degenerate
    two = sweep_of(tmp_path / "two", runs + [Run(r.schedule, r.budget, r.loss, seed=r.seed, extra={"optimizer": "sgd"})
                                             for r in runs])
    assert "over 6 problems, 4 of them degenerate (2 under 20 steps, 2 all within noise)" in report(two, "--format", "md")


# ---- contrasts and the profile's name


def test_contrasts_bootstrap_over_settings_and_seeds(tmp_path: Path) -> None:
    runs = [Run(s, b, (0.9 if s == "rex" else 1.0) * (1 + d / 100) + seed / 50, seed=seed, extra={"task.d_model": d})
            for d in (32, 64, 128) for b in (0.1, 1.0) for seed in (0, 1, 2) for s in ("rex", "linear", "cosine")]
    sweep = sweep_of(tmp_path, runs)
    contrasts = table(sweep, "contrasts").set_index("contrast")
    rex = contrasts.loc["rex - linear"]
    assert (rex["settings"], rex["problems"], rex["paired"], rex["a_better"]) == (3, 6, 6, 6)
    assert rex["ci_low"] < rex["diff_pct"] < rex["ci_high"] < 0
    assert rex["verdict"] == "rex better"
    same = contrasts.loc["linear - cosine"]  # equal results: a zero difference, not shown to be anything
    assert (same["diff_pct"], same["verdict"]) == (0.0, "no difference shown")
    assert list(contrasts.index) == ["rex - linear", "linear - cosine"]  # cosine - linear is linear - cosine


def test_the_profile_is_named_for_final_metric_ratios_at_two_r_max(tmp_path: Path) -> None:
    runs = [Run(s, 1.0, v, extra=extra) for s, v in (("rex", 1.0), ("linear", 1.05)) for extra in ({}, {"optimizer": "sgd"})]
    md = report(sweep_of(tmp_path, runs), "--format", "md")
    assert "## Dolan-More profile of final-metric ratios, r_max = 1.1 and 1.02" in md
    assert "| linear | 0.500 | 0.000 |" in md  # 1.05: within 10% (score (1.1 - 1.05) / 0.1), not within 2%
    assert "(AlgoPerf)" not in md


def test_plateau_is_constant_in_a_run_too_short_to_lower_its_lr() -> None:
    from schedsweep.results import identical

    def record(name: str, steps: int) -> dict[str, Any]:
        spec = {"schedule": without_labels(schedules.load(name)), "steps": steps}
        return {"id": f"{name}-{steps}", "spec": spec, "log": {"eval_every": 100}}

    # patience 3: a decay needs 5 evaluations before the last update; 401 steps have 4 ((401 - 1) // 100), 501 have 5
    digests = identical.digests([record(n, s) for n in ("plateau", "constant") for s in (401, 501)])
    assert digests["plateau-401"] == digests["constant-401"] is not None
    assert digests["plateau-501"] is None and digests["constant-501"] is not None


def test_a_contrast_over_one_setting_has_no_verdict(tmp_path: Path) -> None:
    runs = [Run(s, b, v + seed / 50, seed=seed) for b in (0.1, 1.0) for seed in (0, 1, 2)
            for s, v in (("rex", 0.9), ("linear", 1.0))]
    contrasts = table(sweep_of(tmp_path, runs), "contrasts").set_index("contrast")
    assert contrasts.loc["rex - linear", "ci_high"] < 0  # seed noise alone: an interval that excludes 0
    assert contrasts.loc["rex - linear", "verdict"] == "none (1 setting)"


def test_average_rank_per_optimizer_as_rex_fig_1_and_pooled_labelled(tmp_path: Path) -> None:
    runs = [Run(s, 1.0, v, extra={"optimizer": o}) for o, order in (("adamw", ("rex", "linear")), ("sgd", ("linear", "rex")))
            for s, v in zip(order, (1.0, 2.0))]
    sweep = sweep_of(tmp_path, runs)
    per = table(sweep, "budgets_by_optimizer").set_index(["optimizer", "schedule"])
    assert (per.loc[("adamw", "rex"), "all"], per.loc[("sgd", "rex"), "all"]) == (1.0, 2.0)
    md = report(sweep, "--format", "md")
    assert "## Average rank per budget and optimizer (REX Fig. 1)" in md
    assert "## Average rank per budget, optimizers pooled" in md
    pairs = table(sweep, "pairs")  # (optimizer, schedule) pairs: one LR sequence under two optimizers is two
    assert set(pairs["schedule"]) == {"adamw/rex", "adamw/linear", "sgd/rex", "sgd/linear"}
    assert set(pairs["same_as"]) == {""} and sorted(pairs["rank"]) == [1, 1, 3, 3]


# ---- test error as a metric (REX ranks by it)


def test_classification_tasks_log_eval_error_and_report_ranks_by_it(tmp_path: Path) -> None:
    import torch

    from schedsweep.tasks import charlm, classifier, digits
    from schedsweep.train import metrics

    for task in (classifier.Classifier(seed=0, n_train=64, n_eval=50, hidden=8), digits.Digits(seed=0)):
        model = task.build_model()
        with torch.no_grad():
            wrong = (model(task.x_eval).argmax(dim=1) != task.y_eval).sum().item()
        assert task.eval_metrics(model) == {"eval_error": pytest.approx(wrong / len(task.y_eval))}
    lm = charlm.CharLM(seed=0, d_model=16, n_layers=1, n_heads=2, context=16)
    assert 0.5 < lm.eval_metrics(lm.build_model())["eval_error"] <= 1.0  # untrained: mostly wrong

    launched = CliRunner().invoke(app, ["launch", "task=classifier", "full_steps=20", "eval_every=5", "task.n_train=256",
                                        "task.hidden=16", "schedule=linear,constant", "budget=1.0", "executor=debug",
                                        "--results", str(tmp_path / "results"), "--name", "err"])
    assert launched.exit_code == 0, launched.output
    sweep = tmp_path / "results" / "err"
    ranking = pd.read_csv(io.StringIO(report(sweep, "--metric", "eval_error", "--format", "csv")))
    for record in store.read_plan(sweep):
        logged = metrics.read_metrics(store.run_dir(sweep, record["id"]) / run_folder.METRICS)
        errors = [e for e in logged["eval_error"].to_pylist() if e is not None]
        assert len(errors) == 4  # after steps 4, 9, 14, 19
        assert row(ranking, schedule=record["labels"]["schedule"])["mean"] == pytest.approx(errors[-1])
    assert ranking["mean"].between(0, 1).all()


def test_a_study_ranks_each_task_by_its_own_metric(tmp_path: Path) -> None:
    study = tmp_path / "mine" / "study"
    study.mkdir(parents=True)
    (study / "errors.yaml").write_text("# @package _global_\nreport:\n  metric: eval_error\n  metric_by_task:\n"
                                       "    quadratic: eval_loss\n")
    launched = CliRunner().invoke(app, ["launch", "--config-dir", str(tmp_path / "mine"), "+study=errors",
                                        "task=classifier,quadratic", "full_steps=20", "eval_every=10",
                                        "schedule=linear,constant", "budget=1.0", "executor=debug",
                                        "--results", str(tmp_path / "results"), "--name", "errors"])
    assert launched.exit_code == 0, launched.output
    sweep = tmp_path / "results" / "errors"
    by_study = pd.read_csv(io.StringIO(report(sweep, "--format", "csv")))
    by_loss = pd.read_csv(io.StringIO(report(sweep, "--metric", "eval_loss", "--format", "csv")))
    by_error = pd.read_csv(io.StringIO(report(sweep, "--metric", "eval_error", "--format", "csv")))
    for schedule in ("linear", "constant"):
        assert row(by_study, task="classifier", schedule=schedule)["mean"] == \
            row(by_error, task="classifier", schedule=schedule)["mean"] != row(by_loss, task="classifier", schedule=schedule)["mean"]
        assert row(by_study, task="quadratic", schedule=schedule)["mean"] == row(by_loss, task="quadratic", schedule=schedule)["mean"]
    assert by_error[by_error["task"] == "quadratic"]["mark"].eq("missing").all()  # no classes: no error to rank by
    assert "ranked by final_eval_error; quadratic: final_eval_loss" in report(sweep, "--format", "md")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(0.1, 10), min_size=2, max_size=4), min_size=3, max_size=5), st.floats(0.5, 2.0))
def test_a_contrast_of_a_scaled_copy_is_its_scale(losses: list[list[float]], scale: float) -> None:
    """A = scale x B at every seed of every problem: the contrast and both ends of its interval are 100 (scale - 1)."""
    from schedsweep.results import contrasts

    rows = [(p, p, s, seed, v * (scale if s == "rex" else 1.0))
            for p, seeds in enumerate(losses) for seed, v in enumerate(seeds) for s in ("rex", "linear")]
    seeds = pd.DataFrame(rows, columns=["problem", "setting", "schedule", "seed", "value"])
    ranked = pd.DataFrame({"schedule": ["rex", "linear"]})
    (row_,) = contrasts.contrasts(ranked, seeds, "linear", n_boot=200).to_dict("records")
    expected = 100 * (scale - 1)
    assert (row_["contrast"], row_["problems"], row_["settings"], row_["paired"]) == ("rex - linear", len(losses),
                                                                                       len(losses), len(losses))
    assert row_["diff_pct"] == pytest.approx(expected, abs=1e-9)
    assert row_["ci_low"] == pytest.approx(expected, abs=1e-9) and row_["ci_high"] == pytest.approx(expected, abs=1e-9)
    if abs(expected) > 1e-6:
        assert row_["verdict"] == ("rex better" if scale < 1 else "linear better")


@settings(max_examples=200, deadline=None)
@given(st.floats(-50, 50), st.floats(1.0, 500.0))
def test_t_tail_matches_scipy_and_the_closed_forms(t: float, df: float) -> None:
    from scipy import stats  # scikit-learn's dependency: in the test environment, not imported by the report

    # scipy itself is off by ~1e-9 near t = 0 at df = 1 (0.5 - 4.7e-9 at t = 1e-8; the Cauchy tail is 0.5 - 3.2e-9)
    assert significance.t_sf(t, df) == pytest.approx(float(stats.t.sf(t, df)), abs=1e-8)
    assert significance.t_sf(t, 1) == pytest.approx(0.5 - math.atan(t) / math.pi, abs=1e-14)  # Cauchy
    assert significance.t_sf(t, 2) == pytest.approx(0.5 - t / (2 * math.sqrt(t * t + 2)), abs=1e-14)
