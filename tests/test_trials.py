"""The trial protocol (schedsweep.train.trials) and its first user, AutoLRS (schedsweep.schedules.autolrs):
trials rewind bit-exactly, a run stopped mid-trial resumes to the same result, the budget counts the trials."""

from __future__ import annotations

import math
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from schedsweep import schedules
from schedsweep.errors import ScheduleError
from schedsweep.plan.grid import make_plan
from schedsweep.schedules import autolrs
from schedsweep.sharing import branching
from schedsweep.sweep import store
from schedsweep.sweep.status import DONE, REQUEUED
from schedsweep.train import checkpoint
from schedsweep.train import run as train
from schedsweep.train.distributed import Dist
from schedsweep.train.metrics import MetricsWriter, read_metrics
from schedsweep.train.trials import Controller
from schedsweep.sweep import run_folder

TINY_MLP = ["task=classifier", "task.n_train=512", "task.hidden=16", "task.n_eval=128"]

BUDGET = 200
AUTOLRS = ["schedule=autolrs", "schedule.tau=40", "schedule.tau_max=80", "optimizer=adamw", f"budget={BUDGET}",
           f"full_steps={BUDGET}", "eval_every=20"]


def run_record(overrides: list[str]) -> dict[str, Any]:
    (run,) = make_plan(overrides).runs
    return run.record()


def train_in(tmp: Path, record: dict[str, Any], state: dict[str, Any] | None = None,
             stop: train.StopFlag | None = None) -> tuple[store.RunStatus, list[dict]]:
    """train.train() in this process; (status, the Parquet rows)."""
    tmp.mkdir(parents=True, exist_ok=True)
    writer = MetricsWriter(tmp / run_folder.METRICS)
    status = train.train(record, tmp, Dist(), writer, state, stop or train.StopFlag())
    writer.flush()
    return status, read_metrics(tmp / run_folder.METRICS).to_pylist()


def numbers(rows: list[dict]) -> list[dict]:
    """Rows without the timing columns, which differ between any two runs."""
    return [{k: v for k, v in r.items() if k not in ("wall_s", "samples_per_s")} for r in rows]


class TriesThenConstant:
    """A controller that tries three LRs before updates 3 and 7 and trains at the constant multiplier 1."""

    def __init__(self, steps: int) -> None:
        self.kept_steps, self.results, self.done = steps, [], set()

    def __call__(self, t: Any) -> Any:
        return 1.0 if np.ndim(t) == 0 else np.ones(np.shape(t))

    def wants_search(self, step: int) -> bool:
        return step in (3, 7) and step not in self.done

    def search(self, step: int, trials: Any) -> None:
        self.results += [trials.run(f, 4, eval_every=2) for f in (1.0, 0.1, 0.01)]
        self.done.add(step)

    def state_dict(self) -> dict[str, Any]:
        return {"done": sorted(self.done)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.done = set(state["done"])


def test_trials_then_restore_leave_the_run_bit_identical_to_one_that_never_tried(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    record = run_record([*TINY_MLP, "optimizer=adamw", "budget=12", "full_steps=12", "eval_every=4",
                         "schedule=constant"])
    plain, plain_rows = train_in(tmp_path / "plain", record)
    controller = TriesThenConstant(12)
    assert isinstance(controller, Controller)
    monkeypatch.setattr(train.schedules, "build", lambda spec, steps: controller)
    tried, tried_rows = train_in(tmp_path / "tried", record)
    assert numbers(tried_rows) == numbers(plain_rows)  # losses, gradient norms, LRs, eval losses: bit for bit
    assert tried.final_eval_loss == plain.final_eval_loss
    assert [len(r.losses) for r in controller.results] == [4] * 6 and [len(r.eval_losses) for r in controller.results] == [2] * 6
    assert controller.results[0].losses != controller.results[2].losses  # the trials did train, at their own LRs
    assert tried.trial_steps == 24 and tried.steps_done == 12 + 24 and plain.trial_steps == 0


@pytest.mark.slow
def test_autolrs_spends_its_budget_on_trials_and_stages(tmp_path: Path) -> None:
    status, rows = train_in(tmp_path, run_record([*TINY_MLP, *AUTOLRS]))
    f = schedules.build(run_record([*TINY_MLP, *AUTOLRS])["spec"]["schedule"], BUDGET)
    assert [(s.trial, s.length) for s in f.stages] == [(4, 40), (8, 40)]
    assert status.status == DONE and status.steps_done == BUDGET and status.trial_steps == 10 * 4 + 10 * 8
    assert len(rows) == 80 and [r["step"] for r in rows] == list(range(80))
    lrs = sorted({r["lr"] for r in rows})
    assert 1 <= len(lrs) <= 2 and all(np.isfinite(lrs))


class StopAfter(train.StopFlag):
    """A stop flag raised (SIGTERM) at its n-th read: the loop and the trials read it once per update."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.reads, self.n = 0, n

    @property  # type: ignore[override]
    def signal(self) -> int | None:
        self.reads += 1
        return signal.SIGTERM if self.reads >= self.n else None

    @signal.setter
    def signal(self, value: int | None) -> None:
        pass


@pytest.mark.slow
def test_autolrs_stopped_mid_trial_resumes_to_the_same_result(tmp_path: Path) -> None:
    record = run_record([*TINY_MLP, *AUTOLRS])
    whole, whole_rows = train_in(tmp_path / "whole", record)
    path = tmp_path / "stopped"
    # the first stage's search: 10 trials of 4 updates from update 0; read 7 is the 3rd update of trial 2
    stopped, _ = train_in(path, record, stop=StopAfter(7))
    assert stopped.status == REQUEUED and stopped.steps_done == 4  # one trial finished, and counted
    state = checkpoint.load(path)
    assert state["step"] == 0 and len(state["schedule"]["tried"]) == 1  # the BO history travels in the checkpoint
    resumed, resumed_rows = train_in(tmp_path / "resumed", record, state)
    assert numbers(resumed_rows) == numbers(whole_rows)
    assert (resumed.final_eval_loss, resumed.trial_steps, resumed.steps_done) == (
        whole.final_eval_loss, whole.trial_steps, whole.steps_done)


def test_stage_layout_follows_the_authors_growth_and_pays_for_trials() -> None:
    stages = autolrs.plan(40_000, 1000, 8000, 0.1, 10)
    assert [(s.trial, s.length, s.held_out) for s in stages] == [
        (100, 1000, False), (200, 2000, False), (400, 4000, False), (800, 8000, False), (800, 2000, True)]
    assert sum(s.length for s in stages) + sum(10 * s.trial for s in stages) == 40_000
    assert stages[-1].every == 50  # tau' / 16 (server.py:119)
    # a remainder too small for another search joins the last stage
    assert [(s.trial, s.length) for s in autolrs.plan(620, 100, 8000, 0.1, 10)] == [(10, 100), (20, 220)]
    with pytest.raises(ScheduleError, match="one search"):
        autolrs.plan(100, 1000, 8000, 0.1, 10)


def test_exponential_forecast_recovers_an_exponential() -> None:
    """At a scale where the authors' spline (scipy's default smoothing s = n, i.e. unit noise) follows the
    series, the fit recovers a exp(b x) + c; at loss scale ~1 the spline smooths it towards a parabola first."""
    x = np.arange(100.0)
    y = 2e5 * np.exp(-0.05 * x) + 5e4
    assert autolrs.exp_forecast(y, 1000, training=True) == pytest.approx(5e4, rel=1e-3)
    assert autolrs.exp_forecast(y, 120, training=True) == pytest.approx(2e5 * math.exp(-6.0) + 5e4, rel=1e-3)
    small = autolrs.exp_forecast(y / 1e5, 1000, training=True)
    assert math.isfinite(small) and small < y[-1] / 1e5


def test_bo_asks_a_random_lr_first_then_the_most_uncertain_one_deterministically() -> None:
    f = autolrs.AutoLRS(1000, tau=0.04, tau_max=0.3)
    first = f._ask(seed=0, stage=0)
    assert 0.01 <= first <= 1.0 and first == f._ask(seed=0, stage=0) != f._ask(seed=1, stage=0)
    f.tried = [(first, 1.0)]
    second = f._ask(seed=0, stage=0)
    assert 0.01 <= second <= 1.0 and abs(math.log10(second) - math.log10(first)) > 0.5  # far from the known point
    assert second == f._ask(seed=0, stage=0)


def test_autolrs_never_shares_a_prefix() -> None:
    runs = make_plan([*TINY_MLP, *AUTOLRS[:3], "full_steps=2000", "budget=0.5,1.0"]).runs
    sharing = branching.find(runs)
    assert sharing.trees == () and sharing.unshared == {branching.STATEFUL: 2}


def test_autolrs_is_stateful_never_a_lambda_lr_and_explains_itself() -> None:
    spec = schedules.load("autolrs")
    assert schedules.stateful(schedules.build(spec, 40_000))
    assert "trial" in spec["description"] and "autolrs_server.py" in spec["source"]
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ScheduleError, match="trials"):
        schedules.lambda_lr(opt, "autolrs", 40_000)


class FakeTrials:
    """Trials whose losses decay to 1 + (log10(factor) + 1)^2: the best LR is 0.1 x the peak."""

    seed = 0

    def __init__(self) -> None:
        self.asked: list[tuple[float, int, int]] = []

    def run(self, factor: float, steps: int, eval_every: int = 0) -> Any:
        from schedsweep.train.trials import TrialResult

        self.asked.append((factor, steps, eval_every))
        floor = 1.0 + (math.log10(factor) + 1.0) ** 2
        curve = [floor + 2.0 * math.exp(-0.3 * i) for i in range(steps)]
        return TrialResult(factor, curve, curve[eval_every - 1::eval_every] if eval_every else [])


def test_a_search_keeps_the_lr_of_the_smallest_forecast_and_switches_to_held_out_losses() -> None:
    f = autolrs.AutoLRS(160, tau=40, tau_max=40)  # tau' = 4 is not < 40 / 10: the second stage forecasts held-out
    assert [(s.trial, s.held_out) for s in f.stages] == [(4, False), (4, True)] and f.stages[1].every == 1
    trials = FakeTrials()
    for stage in f.stages:
        assert f.wants_search(stage.start)
        f.search(stage.start, trials)
        assert not f.wants_search(stage.start)
    assert [s for _, s, _ in trials.asked] == [4] * 20 and {e for *_, e in trials.asked} == {0, 1}
    for k, chosen in enumerate(f.chosen):
        tried = [a[0] for a in trials.asked[10 * k: 10 * k + 10]]
        assert chosen in tried
        assert abs(math.log10(chosen) + 1.0) == pytest.approx(min(abs(math.log10(t) + 1.0) for t in tried), abs=0.2)
    assert f(np.array([0, 39, 40, f.kept_steps - 1])).tolist() == [f.chosen[0], f.chosen[0], f.chosen[1], f.chosen[1]]


def test_autolrs_with_a_script_task_is_refused_at_plan_time() -> None:
    from schedsweep.errors import ConfigError

    with pytest.raises(ConfigError, match="only the built-in loop"):
        make_plan(["task=script", "task.command=python train.py", "schedule=autolrs", "schedule.tau=0.1"])


def test_the_report_labels_trial_steps_and_stage_steps() -> None:
    import pandas as pd

    from schedsweep.results import caveats

    runs = pd.DataFrame({"schedule": ["autolrs", "autolrs", "cosine"], "steps_done": [200, 200, 200],
                         "trial_steps": [120, 120, 0]})
    assert caveats.trial_note(runs) == [("autolrs: 240 of its 400 steps (60%) were trials that rewound; it is "
                                         "ranked at equal total steps (its stage steps alone: 160).")]
    assert caveats.trial_note(runs.drop(columns="trial_steps")) == caveats.trial_note(runs.iloc[2:]) == []
