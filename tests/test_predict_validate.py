"""predict knows when it does not know: it validates the law on the sweep's runs before ranking, flags
extrapolated what-ifs and degenerate parameters, and --optimize checks its arguments before fitting,
refuses a law that does not rank the sweep (unless --force) and writes into the user's own conf folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import make_logged_sweep
from helpers import cli
from helpers import Run

from schedsweep.predict.sweep import predict_sweep
from schedsweep.predict import output
from schedsweep.predict.laws import Law
from schedsweep.predict.validate import NO_RANK, degenerate, validate

CONF = Path(__file__).resolve().parent.parent / "conf"


@pytest.mark.slow
def test_predict_prints_its_validation_before_the_ranking_and_flags_extrapolated_what_ifs(tiny_sweep: Path) -> None:
    proc = cli("predict", str(tiny_sweep), "--fit", "schedule=constant,cosine", "--what-if", "schedule=wsd",
               "budget=0.25,1.0", cwd=tiny_sweep.parent)
    (group,) = predict_sweep(tiny_sweep, {"schedule": ["constant", "cosine"]})
    check = validate(group)
    assert check.method == "4 held-out run(s)" and check.budgets == 2
    text = " ".join(proc.stdout.split())
    assert f"final loss off by {check.error:.2%} on average" in text
    assert f"predicted winner right at {check.winners} of 2 budget(s), mean Spearman {check.spearman:.2f}" in text
    assert text.index("Verdict:") < text.index("rankings per budget") < text.index("what-if runs")
    rows = [line for line in proc.stdout.splitlines() if " wsd " in line and ("│ 50 " in line or "│ 200 " in line)]
    below = [r for r in rows if "│ 50 " in r]
    assert len(below) == 1 and "extrapolated: below the fitted budgets (100-200 steps)" in below[0]
    assert all("extrapolated" not in r for r in rows if "│ 200 " in r)


@pytest.mark.slow
def test_optimize_refuses_a_law_that_does_not_rank_the_sweep_and_force_writes_to_schedules(tiny_sweep: Path, tmp_path: Path) -> None:
    (group,) = predict_sweep(tiny_sweep, {})
    assert validate(group).verdict == NO_RANK  # this tiny sweep: fitted on all 8 runs, checked on their second halves
    refused = cli("predict", str(tiny_sweep.resolve()), "--optimize", "--name", "mine", cwd=tmp_path, check=2)
    assert "--optimize refuses:" in refused.stderr and "does NOT rank" in refused.stderr and "--force" in refused.stderr
    assert not (tmp_path / "schedules").exists()
    forced = cli("predict", str(tiny_sweep.resolve()), "--optimize", "--name", "mine", "--force", cwd=tmp_path)
    assert (tmp_path / "schedules" / "schedule" / "mine.yaml").is_file()
    assert "launch it: schedsweep launch --config-dir schedules schedule=mine budget=1.0" in forced.stdout


@pytest.mark.slow
def test_the_curves_figure_is_scaled_to_the_actual_curves(tiny_sweep: Path, tmp_path: Path) -> None:
    groups = predict_sweep(tiny_sweep, {"schedule": ["constant", "cosine"]})
    limits = output.plot(groups, tmp_path / "c.png")
    runs = groups[0].runs
    for (low, high), steps in zip(limits, sorted(set(runs["steps"]))):
        observed = np.concatenate([groups[0].curves[i][2] for i in runs.loc[runs["steps"] == steps, "id"]])
        span = observed.max() - observed.min()
        assert observed.min() - 0.1 * span <= low <= observed.min() and observed.max() <= high <= observed.max() + 0.1 * span


def two_lrs(root: Path) -> Path:
    return make_logged_sweep(root, [Run(s, b, loss + b, lr=lr) for b in (0.02, 0.04)
                                    for s, loss in (("linear", 1.0), ("cosine", 1.1)) for lr in (1e-3, 3e-3)])


@pytest.mark.slow
def test_optimize_checks_its_arguments_before_fitting_and_suggests_values_of_the_sweep(tmp_path: Path) -> None:
    folder = two_lrs(tmp_path / "s")
    proc = cli("predict", str(folder), "--optimize", "--name", "mine", cwd=tmp_path, check=2)
    message = " ".join(proc.stderr.split())
    assert "--optimize needs one setting and peak LR, but the fit has 2" in message
    assert "e.g. --fit lr=0.001." in message  # a value the sweep has
    assert "fitted on" not in proc.stdout and not (folder / "predicted").exists()  # refused before any fit
    nothing = cli("predict", str(folder), "--fit", "lr=0.003,0.01", "--fit", "schedule=nope", cwd=tmp_path, check=2)
    assert "its done runs have lr: 0.001, 0.003; schedule: linear, cosine" in " ".join(nothing.stderr.split())
    own = cli("predict", str(folder), "--optimize", "--name", "mine", "--out", str(CONF), cwd=tmp_path, check=2)
    assert "is schedsweep's own conf/" in own.stderr and not (CONF / "schedule" / "mine.yaml").exists()


def test_degenerate_parameters_are_named() -> None:
    mpl = Law("mpl", {"L0": 1.0, "A": 0.5, "alpha": 0.4, "B": 2.0, "C": 9.16e18, "beta": 0.6, "gamma": 0.6}, 1.0)
    (problem,) = degenerate(mpl)
    assert problem == "C=9.16e+18 has run away: 9.2e+18 x its starting value"
    tissue = Law("tissue", {"L0": 1.0, "A": 0.5, "alpha": 0.4, "C": 2.0, "lam": 1.0}, 1.0)
    assert degenerate(tissue) == ["lam=1 is at its bound 1"]
    assert degenerate(Law("mpl", {"L0": 1.0, "A": 0.5, "alpha": 0.4, "B": 2.0, "C": 1.3, "beta": 0.6, "gamma": 0.6}, 1.0)) == []
