"""schedsweep.client in-process: the run a script sees, its LR, its Parquet rows, its checkpoint and its errors."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

import schedsweep.client as sweep
from schedsweep import files
from schedsweep import schedules
from schedsweep.train import metrics
from schedsweep.train.script import ENV_RUN_DIR
from schedsweep.sweep import run_folder

from helpers import make_run_dir

STEPS = 12  # helpers.make_run_dir's default
pytestmark = pytest.mark.usefixtures("keep_signal_handlers")






def train(run: sweep.Run, until: int | None = None, **extra: Any) -> list[float]:
    """A real torch loop through the client; returns the LR the optimizer used at every step."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=run.peak_lr)
    scheduler = run.lr_scheduler(optimizer)
    used = []
    for step in range(run.start_step, run.steps if until is None else until):
        loss = model(torch.ones(2, 4)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
        run.log(step, loss=loss.item(), **extra)
    return used


def test_alone_init_returns_the_defaults_given_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_RUN_DIR, raising=False)
    monkeypatch.chdir(tmp_path)
    run = sweep.init(steps=50, peak_lr=0.02, schedule="cosine", seed=7)
    assert (run.steps, run.peak_lr, run.seed, run.start_step, run.folder) == (50, 0.02, 7, 0, None)
    expected = [0.02 * f for f in schedules.values(schedules.load("cosine"), 50)]
    assert train(run) == pytest.approx(expected, rel=1e-12)
    run.finish(eval_loss=1.0)
    assert run.load_checkpoint() is None and list(tmp_path.iterdir()) == []


def test_under_a_sweep_the_lr_used_at_every_step_is_the_schedules_and_parquet_has_one_row_per_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_run_dir(tmp_path, monkeypatch)
    run = sweep.init(steps=999, peak_lr=5.0)  # the defaults do not apply under a sweep
    assert (run.steps, run.peak_lr, run.seed, run.eval_every) == (STEPS, 0.1, 3, 5)
    expected = [0.1 * f for f in schedules.values(schedules.load("linear"), STEPS)]
    used = train(run, accuracy=0.5)
    run.log(STEPS - 1, accuracy=0.75)  # the same step: fills the same row
    run.finish(eval_loss=0.25)
    assert used == pytest.approx(expected, rel=1e-12)
    table = metrics.read_metrics(path / run_folder.METRICS)
    assert table["step"].to_pylist() == list(range(STEPS))
    assert table["lr"].to_pylist() == pytest.approx(expected, rel=1e-12)
    assert table["accuracy"].to_pylist() == [0.5] * (STEPS - 1) + [0.75]
    assert table["eval_loss"].to_pylist() == [None] * (STEPS - 1) + [0.25]
    assert table.column_names[: len(metrics.COLUMNS)] == list(metrics.COLUMNS)
    state = files.read_json(path / run_folder.CLIENT)
    assert state["state"] == "finished" and state["steps_done"] == STEPS and state["final_eval_loss"] == 0.25


@pytest.mark.parametrize(("calls", "message"), [
    ([(3, 1.0), (2, 1.0)], "run.log(step=2) after step 3: steps must be logged in order"),
    ([(STEPS, 1.0)], f"step {STEPS} is beyond the budget; this run trains steps 0..{STEPS - 1}"),
    ([(-1, 1.0)], "step -1 is before the run's start_step"),
    ([(0, "high")], "metric 'loss' must be a number; got 'high'"),
])
def test_bad_logging_raises_one_message_and_records_it_for_the_status(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: list[tuple[int, Any]], message: str) -> None:
    path = make_run_dir(tmp_path, monkeypatch)
    run = sweep.init()
    with pytest.raises(sweep.ClientError) as error:
        for step, loss in calls:
            run.log(step, loss=loss)
    assert message in str(error.value)
    state = files.read_json(path / run_folder.CLIENT)
    assert state["state"] == "error" and message in state["error"]


def test_finish_before_the_last_step_and_a_step_without_loss_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_run_dir(tmp_path, monkeypatch)
    run = sweep.init()
    train(run, until=5)
    with pytest.raises(sweep.ClientError, match=f"after step 4: the run's budget is {STEPS} steps"):
        run.finish()
    run.log(5, accuracy=1.0)
    with pytest.raises(sweep.ClientError, match="step 5 was logged without loss"):
        run.log(6, loss=1.0)


def test_a_non_finite_loss_records_diverged_and_stops_the_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_run_dir(tmp_path, monkeypatch)
    run = sweep.init()
    run.log(0, loss=2.0)
    with pytest.raises(SystemExit):
        run.log(1, loss=math.inf)
    state = files.read_json(path / run_folder.CLIENT)
    assert state["state"] == "diverged" and "non-finite loss inf at step 1" in state["error"]
    assert metrics.read_metrics(path / run_folder.METRICS)["loss"].to_pylist() == [2.0, math.inf]


def test_a_checkpointed_run_resumes_at_start_step_with_no_missing_or_repeated_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_run_dir(tmp_path, monkeypatch)
    run = sweep.init()
    train(run, until=5)
    assert not run.should_stop()
    os.kill(os.getpid(), signal.SIGUSR2)  # what Slurm sends before the time limit
    assert run.should_stop()
    run.save_checkpoint({"weights": [1, 2, 3]})
    run.log(5, loss=9.0)  # logged after the checkpoint, then killed: must not survive the resume
    run._writer.flush()  # type: ignore[union-attr]

    assert sweep.init() is run  # under a sweep, one run per process
    monkeypatch.setattr(sweep, "_current", None)  # a new process: the requeued attempt
    resumed = sweep.init()
    assert resumed.start_step == 5 and resumed.load_checkpoint() == {"weights": [1, 2, 3]}
    expected = [0.1 * f for f in schedules.values(schedules.load("linear"), STEPS)]
    assert train(resumed) == pytest.approx(expected[5:], rel=1e-12)  # the scheduler starts at step 5
    resumed.finish(eval_loss=0.5)
    table = metrics.read_metrics(path / run_folder.METRICS)
    assert table["step"].to_pylist() == list(range(STEPS))
    assert 9.0 not in table["loss"].to_pylist()
    assert table["wall_s"].to_pylist() == sorted(table["wall_s"].to_pylist())  # wall time counts both attempts
