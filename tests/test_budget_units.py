"""Budgets in tokens or samples (budget_unit): the steps they bind to, the ids they keep, the plan line,
the errors, and the report's budget column through the CLI."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from schedsweep.errors import ConfigError
from schedsweep.plan.grid import make_plan
from schedsweep.plan import units

from helpers import TINY, cli

LM = ["task=charlm", "task.batch_size=8", "task.context=16"]  # 128 tokens a step


def steps_of(overrides: list[str]) -> dict[str, int]:
    return {run.labels["budget"]: run.labels["steps"] for run in make_plan(overrides, check_imports=False).runs}


def test_token_budgets_give_the_right_step_counts() -> None:
    # 128 tokens a step: 12,800 -> 100 steps; 1e4 -> 78.125 -> 78; 6,464 -> 50.5 -> 51 (half up)
    assert steps_of([*LM, "budget_unit=tokens", "budget=12800,1e4,6464"]) == {
        "12,800 tokens": 100, "10,000 tokens": 78, "6,464 tokens": 51}
    assert steps_of([*LM, "budget_unit=tokens", "budget=200"]) == {"200 tokens": 2}  # 1.56 steps: the fewest allowed
    assert steps_of([*LM, "budget_unit=tokens", "accumulate=4", "budget=12800"]) == {"12,800 tokens": 25}
    assert steps_of([*LM, "budget_unit=tokens", "tokens_per_step=1000", "budget=3e9"]) == {"3e9 tokens": 3_000_000}
    assert steps_of([*LM, "budget_unit=samples", "budget=800"]) == {"800 samples": 100}  # 8 samples a step
    assert steps_of([*TINY, "budget_unit=samples", "samples_per_step=10", "budget=2.5e7"]) == {"2.5e7 samples": 2_500_000}


def test_a_budget_in_tokens_is_the_same_run_as_its_steps() -> None:
    (tokens,) = make_plan([*LM, "budget_unit=tokens", "budget=12800"], check_imports=False).runs
    (steps,) = make_plan([*LM, "budget=100"], check_imports=False).runs
    assert tokens.id == steps.id and tokens.spec == steps.spec
    assert tokens.labels["per_step"] == {"unit": "tokens", "n": 128} and "per_step" not in steps.labels


def test_the_plan_states_steps_and_tokens() -> None:
    runs = make_plan([*LM, "budget_unit=tokens", "budget=12800,1e4"], check_imports=False).runs
    assert units.plan_line(runs) == ("budgets in tokens (128 tokens a step): 10,000 tokens = 78 steps (9,984 tokens "
                                     "trained); 12,800 tokens = 100 steps (12,800 tokens trained)")
    assert units.plan_line(make_plan([*LM, "budget=0.5"], check_imports=False).runs) is None


@pytest.mark.parametrize(("overrides", "message"), [
    ([*TINY, "budget_unit=tokens", "budget=1e6"], "budget_unit=tokens needs tokens_per_step, or a task with integer "
                                                   "batch_size and context to compute it (the task has no integer task.context)"),
    ([*LM, "budget_unit=tokens", "budget=100"], "rounds to 1 step(s); a run needs at least 2: give a budget >= 256 tokens"),
    ([*LM, "budget_unit=tokens", "budget=-5"], "budget -5 is not allowed with budget_unit=tokens"),
    ([*LM, "budget_unit=tokens,samples"], "'budget_unit' cannot be swept"),
    ([*LM, "budget_unit=flops"], "budget_unit must be"),
])
def test_bad_budgets_in_units_are_named(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_plan(overrides, check_imports=False)
    assert message in str(info.value)


@pytest.mark.slow
def test_the_report_shows_budgets_in_the_unit_chosen(tmp_path: Path) -> None:
    args = [*TINY, "task.batch_size=16", "budget_unit=samples", "budget=160,320", "schedule=linear,cosine", "executor=debug"]
    shown = cli("launch", *args, "--name", "samples", cwd=tmp_path).stdout
    assert "budgets in samples (16 samples a step): 160 samples = 10 steps" in shown
    sweep = tmp_path / "results" / "samples"
    ranking = pd.read_csv(io.StringIO(cli("report", str(sweep), "--format", "csv", "--table", "ranking", cwd=tmp_path).stdout))
    assert ranking[["budget", "steps"]].drop_duplicates().values.tolist() == [["160 samples", 10], ["320 samples", 20]]
    text = cli("report", str(sweep), "--format", "md", cwd=tmp_path).stdout
    assert "| 160 samples |" in text and "320 samples" in text and "steps" not in text.split("160 samples")[1][:3]


def test_the_budget_axis_names_budgets_in_their_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import matplotlib.figure

    from schedsweep.results import plots

    ranked = pd.DataFrame({"task": ["t"] * 4, "optimizer": ["o"] * 4, "budget": ["160 samples"] * 2 + ["320 samples"] * 2,
                           "steps": [10, 10, 20, 20], "schedule": ["a", "b", "a", "b"], "mean": [1.0, 1.1, 0.9, 0.95],
                           "std": [float("nan")] * 4})
    ticks: list[str] = []
    savefig = matplotlib.figure.Figure.savefig

    def read_then_save(fig: matplotlib.figure.Figure, *args: object, **kwargs: object) -> None:
        fig.canvas.draw()
        ticks.extend(t.get_text() for ax in fig.axes for t in ax.get_xticklabels())
        savefig(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", read_then_save)
    plots.final_vs_budget(SimpleNamespace(ranked=ranked, metric="final_eval_loss"), {"a": "C0", "b": "C1"})
    assert [t for t in ticks if t] == ["160 samples", "320 samples"]
