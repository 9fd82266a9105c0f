"""Weight averaging (average=ema|lawa): the averages' values, training untouched, exact resume and branching,
run ids, and the report ranking by eval_loss_<average> through the CLI."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pytest
import torch

from schedsweep import files
from schedsweep.errors import ConfigError
from schedsweep.plan.grid import make_plan
from schedsweep.sharing import branching
from schedsweep.sweep import store
from schedsweep.train import checkpoint
from schedsweep.train import run as train
from schedsweep.train.metrics import read_metrics
from schedsweep.sweep import run_folder

from helpers import TINY_MLP, cli, numbers, run_record, statuses, train_in


class Probe:
    """One float64 weight w, loss = w: SGD at lr 0.1 and a constant LR moves w to -0.1 (t + 1) after update t,
    and the evaluation reports w itself, so an average's eval_loss is the average of those values."""

    def __init__(self, seed: int = 0) -> None:
        pass

    def build_model(self) -> torch.nn.Module:
        model = torch.nn.Module()
        model.w = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
        return model

    def batches(self, start: int = 0) -> Iterator[torch.Tensor]:
        while True:
            yield torch.zeros(1)

    def loss(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return model.w * 1.0

    def evaluate(self, model: torch.nn.Module) -> float:
        return float(model.w)


PROBE = ["task=custom", "task._target_=test_averaging.Probe", "optimizer=sgd", "optimizer.lr=0.1", "optimizer.momentum=0.0",
         "schedule=constant", "schedule.warmup=0", "budget=20", "full_steps=20", "eval_every=5"]


def by_step(rows: list[dict[str, Any]], column: str) -> dict[int, float]:
    return {r["step"]: r[column] for r in rows if r.get(column) is not None}


def test_ema_and_lawa_average_the_weights_they_should(tmp_path: Path) -> None:
    w = [-0.1 * (t + 1) for t in range(20)]  # the weight after update t
    ema, expected_ema = w[0], {}
    for t in range(1, 20):
        ema = 0.5 * ema + 0.5 * w[t]
        if (t + 1) % 5 == 0:
            expected_ema[t] = ema
    _, rows = train_in(tmp_path / "ema", run_record([*PROBE, "average=ema", "ema_decay=0.5"]))
    assert by_step(rows, "eval_loss_ema") == pytest.approx(expected_ema, rel=1e-12)
    assert by_step(rows, "eval_loss") == pytest.approx({t: w[t] for t in (4, 9, 14, 19)}, rel=1e-12)  # the live weights

    # LAWA k=3 every 2: the weights after updates 1, 3, 5, ...; the mean of the last three at each evaluation
    _, rows = train_in(tmp_path / "lawa", run_record([*PROBE, "average=lawa", "lawa_k=3", "lawa_every=2"]))
    kept = {t: [w[s] for s in range(1, t + 1, 2)][-3:] for t in (4, 9, 14, 19)}
    assert by_step(rows, "eval_loss_lawa") == pytest.approx({t: sum(v) / len(v) for t, v in kept.items()}, rel=1e-12)

    # before the first kept weights there is no average: the column stays null
    _, rows = train_in(tmp_path / "late", run_record([*PROBE, "average=lawa", "lawa_every=7"]))
    assert sorted(by_step(rows, "eval_loss_lawa")) == [9, 14, 19]


def test_averaging_leaves_training_alone_and_evaluates_task_metrics_too(tmp_path: Path) -> None:
    base = [*TINY_MLP, "optimizer=adamw", "budget=30", "full_steps=30", "eval_every=10"]
    _, plain = train_in(tmp_path / "plain", run_record(base))
    _, kept = train_in(tmp_path / "ema", run_record([*base, "average=ema", "ema_decay=0.9"]))
    for column in ("loss", "grad_norm", "eval_loss", "eval_error", "lr"):
        assert [r[column] for r in kept] == [r[column] for r in plain], column
    averaged = by_step(kept, "eval_loss_ema")
    assert sorted(averaged) == [9, 19, 29] and sorted(by_step(kept, "eval_error_ema")) == [9, 19, 29]
    assert all(averaged[t] != by_step(kept, "eval_loss")[t] for t in averaged)  # another set of weights

    # LAWA of one kept weight, every step, is the live model: its columns equal the plain ones exactly
    _, one = train_in(tmp_path / "one", run_record([*base, "average=lawa", "lawa_k=1", "lawa_every=1"]))
    assert by_step(one, "eval_loss_lawa") == by_step(one, "eval_loss")
    assert by_step(one, "eval_error_lawa") == by_step(one, "eval_error")


@pytest.mark.parametrize("average", [["average=ema", "ema_decay=0.9"], ["average=lawa", "lawa_k=3", "lawa_every=3"]])
def test_a_resumed_run_goes_on_with_the_same_average(tmp_path: Path, average: list[str]) -> None:
    record = run_record([*TINY_MLP, "optimizer=adamw", "budget=24", "full_steps=24", "eval_every=4", *average])
    record["log"]["checkpoint_every"] = 10
    _, full = train_in(tmp_path / "full", record)
    state = checkpoint.load(tmp_path / "full")
    assert state["step"] == 20 and state["average"]["kind"] == record["spec"]["average"]["kind"]
    _, resumed = train_in(tmp_path / "resumed", record, state)
    assert numbers(resumed) == numbers(full[20:])
    assert any(r.get(f"eval_loss_{record['spec']['average']['kind']}") is not None for r in resumed)


def test_the_average_is_in_the_run_id_only_when_on() -> None:
    def one(*overrides: str) -> Any:
        (run,) = make_plan([*TINY_MLP, "budget=1.0", *overrides]).runs
        return run

    plain = one()
    assert one("average=none", "ema_decay=0.5", "lawa_k=9").id == plain.id  # off: ids as before
    ema = one("average=ema")
    assert ema.spec["average"] == {"kind": "ema", "decay": 0.99} and ema.id != plain.id
    assert one("average=ema", "lawa_k=9").id == ema.id  # another kind's parameter is not this run's
    assert one("average=ema", "ema_decay=0.9").id != ema.id
    assert one("average=lawa").spec["average"] == {"kind": "lawa", "k": 5, "every": 20}
    assert len(make_plan([*TINY_MLP, "budget=1.0", "average=none,ema,lawa"]).runs) == 3  # a list sweeps
    with pytest.raises(ConfigError, match=r"ema_decay must be a number in \(0, 1\); got 1.0"):
        one("average=ema", "ema_decay=1.0")
    with pytest.raises(ConfigError, match="average must be"):
        one("average=swa")


def test_a_branch_keeps_the_average_its_trunk_had_at_the_fork(tmp_path: Path) -> None:
    runs = [make_plan([*TINY_MLP, "optimizer=sgd", "schedule=wsd", "schedule.warmup=3", f"budget={steps}",
                       "full_steps=40", "eval_every=5", "average=ema", "ema_decay=0.8"]).runs[0] for steps in (40, 20)]
    sharing = branching.find(runs)
    (tree,) = sharing.trees
    (branch,) = tree.branches

    def train_all(folder: Path, sharing: branching.Sharing) -> dict[str, Path]:
        paths = {}
        for r in runs:
            paths[r.id] = store.run_dir(folder, r.id)
            files.write_json(paths[r.id] / run_folder.RECORD, r.record() | branching.record_keys(sharing, r.id))
            assert train.main(str(paths[r.id]), threads=1) == "done"
        return paths

    shared, alone = train_all(tmp_path / "shared", sharing), train_all(tmp_path / "alone", branching.find([]))
    columns = ["step", "loss", "eval_loss", "eval_loss_ema", "eval_error_ema"]
    own = read_metrics(shared[branch.run] / run_folder.METRICS).select(columns)
    assert own.equals(read_metrics(alone[branch.run] / run_folder.METRICS).select(columns))
    assert (shared[tree.trunk] / run_folder.FORKS).is_dir()


@pytest.mark.slow
def test_report_ranks_by_the_average_and_a_failed_run_resumes_it_exactly(tmp_path: Path) -> None:
    flag = tmp_path / "fail"
    args = ["launch", "task=custom", "task._target_=helpers.FlakyTask", f"+task.fail_if={flag}", "+task.fail_after=13",
            "optimizer=sgd", "optimizer.lr=0.05", "full_steps=24", "budget=1.0", "eval_every=4", "checkpoint_every=5",
            "schedule=constant,linear", "average=ema,lawa", "lawa_k=2", "lawa_every=3", "executor=debug", "--no-reuse"]
    cli(*args, "--name", "twin", cwd=tmp_path)
    flag.write_text("")
    cli(*args, "--name", "flaky", cwd=tmp_path, check=None)
    sweep = tmp_path / "results" / "flaky"
    assert set(statuses(sweep).values()) == {"failed"}
    assert {checkpoint.step(store.run_dir(sweep, r)) for r in statuses(sweep)} == {10}
    flag.unlink()
    cli(*args, "--name", "flaky", "--retry-failed", cwd=tmp_path)
    for run_id in statuses(sweep):
        resumed = read_metrics(store.run_dir(sweep, run_id) / run_folder.METRICS).to_pylist()
        twin = read_metrics(store.run_dir(tmp_path / "results" / "twin", run_id) / run_folder.METRICS).to_pylist()
        assert [r["step"] for r in resumed] == list(range(24))
        assert numbers(resumed) == numbers(twin)

    shown = cli("report", str(sweep), "--metric", "eval_loss_ema", "--format", "csv", "--table", "ranking", cwd=tmp_path).stdout
    ranking = pd.read_csv(io.StringIO(shown))
    final = {}
    for record in store.read_plan(sweep):
        rows = read_metrics(store.run_dir(sweep, record["id"]) / run_folder.METRICS).to_pylist()
        final[(record["spec"]["average"]["kind"], record["labels"]["schedule"])] = rows[-1].get("eval_loss_ema")
    ema = ranking[ranking["average.kind"] == "ema"].set_index("schedule")["mean"]
    assert ema.to_dict() == pytest.approx({s: final[("ema", s)] for s in ("constant", "linear")}, rel=1e-12)
    assert (ranking[ranking["average.kind"] == "lawa"]["mark"] == "missing").all()  # no EMA kept there
    bad = cli("report", str(sweep), "--metric", "eval_loss_swa", cwd=tmp_path, check=2)
    assert "eval_loss_ema" in bad.stderr and "eval_loss_lawa" in bad.stderr


@pytest.mark.slow
def test_report_averaged_ranks_a_constant_trunks_ema_beside_the_cooldowns(tmp_path: Path) -> None:
    cli("launch", *TINY_MLP, "full_steps=30", "budget=1.0", "eval_every=10", "schedule=constant,wsd", "schedule.warmup=3",
        "average=none,ema", "ema_decay=0.8", "executor=debug", "--name", "rival", cwd=tmp_path)
    sweep = tmp_path / "results" / "rival"
    final = {}
    for record in store.read_plan(sweep):
        last = read_metrics(store.run_dir(sweep, record["id"]) / run_folder.METRICS).to_pylist()[-1]
        if record["spec"].get("average"):  # its averaged weights compete as <schedule>+ema
            final[record["labels"]["schedule"] + "+ema"] = last["eval_loss_ema"]
        else:
            final[record["labels"]["schedule"]] = last["eval_loss"]
    shown = cli("report", str(sweep), "--averaged", "--format", "csv", "--table", "ranking", cwd=tmp_path).stdout
    ranking = pd.read_csv(io.StringIO(shown)).set_index("schedule")
    assert sorted(ranking.index) == ["constant", "constant+ema", "wsd", "wsd+ema"]
    assert (ranking["n"] == 1).all()  # a run with and one without the EMA are one raw competitor
    assert ranking["mean"].to_dict() == pytest.approx(final, rel=1e-12)
    assert sorted(ranking["rank"]) == [1, 2, 3, 4]
