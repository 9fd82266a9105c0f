"""Refinement (Defazio et al.): the closed form against the reference values, bad input, and the
two-stage study end to end on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from schedsweep import files
from schedsweep import schedules
from schedsweep.train import metrics
from schedsweep.sweep import store
from schedsweep.schedules.refine import RefineError, choose_norm, closed_form, median_smooth, refine_run, schedule_yaml
from schedsweep.sweep import run_folder
from helpers import cli

G = np.array([4, 2, 1, 1, 1, 1, 1, 1, 1, 1.0])


def test_closed_form_reproduces_the_reference_values() -> None:
    # ../shared/reference/schedules.md 14.3 (T = 10) and the constant-norm row of 14.1 (T = 100)
    assert closed_form(G, 2.0) == pytest.approx([0.073661, 0.285714, 1, 0.857143, 0.714286, 0.571429, 0.428571, 0.285714, 0.142857, 0], abs=1e-6)
    assert closed_form(G, 1.0) == pytest.approx([0.303571, 0.571429, 1, 0.857143, 0.714286, 0.571429, 0.428571, 0.285714, 0.142857, 0], abs=1e-6)
    rising = np.array([1, 1, 1, 1, 1, 1, 1, 1, 2, 4.0])
    assert closed_form(rising, 2.0) == pytest.approx([1, 0.863248, 0.726496, 0.589744, 0.452991, 0.316239, 0.179487, 0.042735, 0.002137, 0], abs=1e-6)
    constant = closed_form(np.full(100, 3.0), 2.0)
    assert constant[[0, 1, 25, 29, 30, 50, 75, 99]] == pytest.approx([1, 0.989899, 0.747475, 0.707071, 0.69697, 0.494949, 0.242424, 0], abs=1e-6)
    assert closed_form(np.full(100, 3.0), 1.0) == pytest.approx(constant)  # constant norms: linear decay for L1 too


def test_median_smoothing_follows_the_authors_padding() -> None:
    g = np.ones(50)
    g[20] = 100.0  # a spike shorter than the window is removed
    assert median_smooth(g, 0.1) == pytest.approx(np.ones(50))
    assert median_smooth(np.arange(30.0), 0.0) == pytest.approx(np.arange(30.0))  # width 1: unchanged
    ramp = median_smooth(np.arange(100.0), 0.1)  # a ramp keeps its interior; the left edge is 'nearest'
    assert ramp[10:90] == pytest.approx(np.arange(10.0, 90.0))
    assert ramp[0] == 0.0


def test_auto_norm_follows_the_optimizer() -> None:
    assert choose_norm("auto", {"_target_": "torch.optim.AdamW"}) == "l1"
    assert choose_norm("auto", {"_target_": "torch.optim.SGD"}) == "l2"
    with pytest.raises(RefineError, match="l3"):
        choose_norm("l3", {})


def _fake_run(tmp_path: Path, norms: list[float | None], optimizer: str = "torch.optim.SGD") -> Path:
    run = tmp_path / "runs" / "abc"
    files.write_json(run / run_folder.RECORD, {"id": "abc", "spec": {"steps": len(norms), "optimizer": {"_target_": optimizer}}})
    rows = [{"step": t, "lr": 0.1, "loss": 1.0, "grad_norm": g, "grad_norm_l1": None if g is None else 10 * g,
             "samples_seen": t, "wall_s": 0.0} for t, g in enumerate(norms)]
    writer = metrics.MetricsWriter(run / run_folder.METRICS)
    for row in rows:
        writer.append(row)
    writer.flush()
    return run


def test_a_refined_schedule_is_a_valid_piecewise_shape(tmp_path: Path) -> None:
    norms = list(np.linspace(3.0, 1.0, 200))  # falling norms
    result = refine_run(_fake_run(tmp_path, norms), "l2", 0.1)
    spec = schedule_yaml(result, "mine", "test")
    assert spec["points"][0][0] == 0.0 and spec["points"][-1] == [1.0, 0.0]
    assert max(v for _, v in spec["points"]) == pytest.approx(1.0)
    for steps in (1, 7, 100, 5000):
        schedules.check(spec, steps, "mine")
    assert yaml.safe_load(yaml.safe_dump(spec)) == spec


@pytest.mark.parametrize(
    ("norms", "message"),
    [
        ([None] * 50, "no 'grad_norm' values"),
        ([1.0] * 5, "refinement needs at least 10"),
        ([1.0] * 20 + [float("nan")] + [1.0] * 20, "NaN, infinite or zero"),
        ([1.0] * 20 + [0.0] + [1.0] * 20, "first at step 20"),
    ],
)
def test_bad_source_runs_are_clear_errors(tmp_path: Path, norms: list[float | None], message: str) -> None:
    with pytest.raises(RefineError, match=message):
        refine_run(_fake_run(tmp_path, norms), "l2", 0.1)


@pytest.mark.slow
def test_refine_cli_writes_yaml_and_plot_and_rejects_bad_input(tmp_path: Path) -> None:
    run = _fake_run(tmp_path, list(np.linspace(1.0, 2.0, 100)), "torch.optim.AdamW")
    out = cli("refine", str(run), "--name", "mine", cwd=tmp_path).stdout
    assert "l1 norms" in out
    spec = yaml.safe_load((tmp_path / "conf" / "schedule" / "mine.yaml").read_text())
    assert spec["shape"] == "piecewise" and "abc" in spec["description"]
    assert (run / "refined-mine.png").stat().st_size > 10_000
    assert "exists" in cli("refine", str(run), "--name", "mine", cwd=tmp_path, check=2).stderr
    assert "not a schedsweep run folder" in cli("refine", str(tmp_path), "--name", "x", cwd=tmp_path, check=2).stderr
    assert "--window" in cli("refine", str(run), "--name", "y", "--window", "2", cwd=tmp_path, check=2).stderr


@pytest.mark.slow
def test_two_stage_refinement_study_ranks_refined_next_to_linear(tmp_path: Path) -> None:
    args = ["launch", "+study=refinement", "task=classifier", "task.n_train=512", "task.hidden=16", "full_steps=60",
            "budget=0.5,1.0", "optimizer=sgd,adamw", "lr_mult=1", "seed=0", "eval_every=10", "executor=debug", "--name", "ref"]
    out = cli(*args, cwd=tmp_path).stdout
    assert out.count("refinement stage 2") == 2
    sweep = tmp_path / "results" / "ref"
    plan = store.read_plan(sweep)
    assert len(plan) == 2 * 2 * 2 + 2 * 2  # stage 1 (linear, cosine) + refined per optimizer at each budget
    report = json.loads(cli("report", str(sweep), "--format", "json", cwd=tmp_path).stdout)
    rows = {(r["optimizer"], r["budget"], r["schedule"]) for r in report["ranking"]}
    for optimizer in ("sgd", "adamw"):
        for budget in (0.5, 1.0):
            assert {(optimizer, budget, "linear"), (optimizer, budget, "refined")} <= rows
    assert any(n.startswith("refined (sgd): refined from run") for n in report["notes"])  # marked with its source
    again = cli(*args, cwd=tmp_path).stdout  # relaunch: nothing new to run in either stage
    assert "0 to run" in again


@pytest.mark.slow
def test_per_budget_refinement_uses_each_budgets_own_linear_run(tmp_path: Path) -> None:
    cli("launch", "+study=refinement", "refinement.per_budget=true", "task=classifier", "task.n_train=512",
        "task.hidden=16", "full_steps=60", "budget=0.5,1.0", "optimizer=sgd", "lr_mult=1", "seed=0", "eval_every=10", "executor=debug",
        "--name", "pb", cwd=tmp_path)
    sweep = tmp_path / "results" / "pb"
    sources = {}
    for budget in (0.5, 1.0):
        spec = yaml.safe_load((sweep / "refined" / f"sgd_budget_{budget}" / "schedule" / "refined.yaml").read_text())
        sources[budget] = spec["description"]
        assert f"budget {budget}" in spec["description"]
    refined = [r for r in store.read_plan(sweep) if r["labels"]["schedule"] == "refined"]
    assert sorted(r["labels"]["budget"] for r in refined) == [0.5, 1.0]  # each budget with its own source only
    assert len(set(sources.values())) == 2


@pytest.mark.slow
def test_refinement_study_refines_each_task_from_its_own_linear_run(tmp_path: Path) -> None:
    # Losses of two tasks are not comparable: each (task, optimizer) is refined from its own best linear run.
    cli("launch", "+study=refinement", "task=classifier,regression", "full_steps=40",
        "optimizer=sgd", "lr_mult=1", "seed=0", "eval_every=10", "executor=debug", "--name", "two", cwd=tmp_path)
    sweep = tmp_path / "results" / "two"
    plan = store.read_plan(sweep)
    by_id = {r["id"]: r for r in plan}
    for task in ("classifier", "regression"):
        spec = yaml.safe_load((sweep / "refined" / f"{task}_sgd" / "schedule" / "refined.yaml").read_text())
        source = spec["description"].split("refined from run ")[1].split(" ")[0]
        assert by_id[source]["labels"]["task"] == task and by_id[source]["labels"]["schedule"] == "linear"
    refined = sorted(r["labels"]["task"] for r in plan if r["labels"]["schedule"] == "refined")
    assert refined == ["classifier", "regression"]
    # the study's equal warm-up reaches the refined runs too
    assert {r["spec"]["schedule"].get("warmup") for r in plan} == {0.05}
