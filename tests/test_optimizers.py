"""Every optimizer in conf/optimizer/ trains the built-in tasks on the real loop; Muon + AdamW in one run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from schedsweep import tasks
from schedsweep.train import checkpoint, groups, optimizers
from schedsweep.errors import ConfigError
from schedsweep.plan.grid import make_plan
from helpers import TINY_LM, TINY_MLP, numbers, run_record, train_in

CONF = Path(__file__).resolve().parents[1] / "conf" / "optimizer"
NAMES = sorted(p.stem for p in CONF.glob("*.yaml"))
# warm-up, no decay: what schedule-free optimizers are made for, and fine for the others
SCHEDULE = ["schedule=constant", "schedule.warmup=0.1"]


def test_the_shipped_optimizers() -> None:
    assert NAMES == ["adamw", "lion", "muon", "prodigy", "schedulefree_adamw", "schedulefree_sgd", "sgd"]


@pytest.mark.parametrize("task", ["classifier", "charlm"])
@pytest.mark.parametrize("name", NAMES)
def test_each_optimizer_trains_each_builtin_task(tmp_path: Path, name: str, task: str) -> None:
    shape = TINY_MLP if task == "classifier" else TINY_LM
    record = run_record([*shape, f"optimizer={name}", *SCHEDULE, "budget=40", "full_steps=40", "eval_every=40"])
    status, rows = train_in(tmp_path, record)
    assert status.status == "done" and [r["step"] for r in rows] == list(range(40))
    first = rows[0]["loss"]
    # it learns; Lion at its shipped lr (AdamW's / 10) is the slowest: 2.27 -> 2.25 on the classifier in 40 steps
    assert status.final_eval_loss < first - 0.02, (name, task, first, status.final_eval_loss)


def test_muon_takes_hidden_matrices_and_adamw_the_rest_each_at_its_own_peak() -> None:
    record = run_record([*TINY_LM, "optimizer=muon", "budget=5", "full_steps=5"])
    task = tasks.build(record["spec"]["task"], 0)
    model = task.build_model()
    opt = optimizers.build(record["spec"]["optimizer"], model, groups.task_groups(task, model))
    muon, adamw = opt.parts
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for g in muon.param_groups for p in g["params"]) == [
        "blocks.0.fc.weight", "blocks.0.out.weight", "blocks.0.proj.weight", "blocks.0.qkv.weight"]
    rest = sorted(names[id(p)] for g in adamw.param_groups for p in g["params"])
    assert "tok.weight" in rest and "pos.weight" in rest and "ln.weight" in rest and "blocks.0.qkv.bias" in rest
    assert [g["peak_lr"] for g in muon.param_groups] == [0.02]
    assert sorted(g["peak_lr"] for g in adamw.param_groups) == [3e-4, 3e-4]  # decay and no-decay groups


def test_muon_run_scales_both_optimizers_by_the_schedule_and_resumes_exactly(tmp_path: Path) -> None:
    record = run_record([*TINY_LM, "optimizer=muon", "schedule=linear", "budget=12", "full_steps=12", "eval_every=6"])
    record["log"]["checkpoint_every"] = 7
    _, full = train_in(tmp_path / "full", record)
    state = checkpoint.load(tmp_path / "full")
    assert state["step"] == 7 and len(state["optimizer"]["parts"]) == 2
    muon, adamw = (part["param_groups"] for part in state["optimizer"]["parts"])
    factor = full[6]["lr"] / 0.02  # the lr of the last update before the checkpoint, over Muon's peak
    assert all(g["lr"] == pytest.approx(0.02 * factor) for g in muon)
    assert all(g["lr"] == pytest.approx(3e-4 * factor) for g in adamw)
    assert all(s["momentum_buffer"].abs().sum() > 0 for s in state["optimizer"]["parts"][0]["state"].values())
    _, resumed = train_in(tmp_path / "resumed", record, state)
    assert numbers(resumed) == numbers(full[7:])


def test_schedule_free_evaluates_at_its_averaged_weights_and_resumes_exactly(tmp_path: Path) -> None:
    record = run_record([*TINY_MLP, "optimizer=schedulefree_adamw", *SCHEDULE, "budget=10", "full_steps=10",
                         "eval_every=5"])
    record["log"]["checkpoint_every"] = 5
    _, full = train_in(tmp_path / "full", record)
    state = checkpoint.load(tmp_path / "full")
    (part,) = state["optimizer"]["parts"]
    assert all(g["train_mode"] for g in part["param_groups"])  # the training point: resume is exact
    task = tasks.build(record["spec"]["task"], 0)
    model = task.build_model()
    model.load_state_dict(state["model"])
    evaluate = lambda: task.evaluate(model)  # noqa: E731
    at_y = evaluate()
    sf = optimizers.build(record["spec"]["optimizer"], model, groups.task_groups(task, model))
    sf.load_state_dict(state["optimizer"])
    sf.eval()  # y -> x, the averaged weights
    assert full[4]["eval_loss"] == pytest.approx(evaluate(), rel=1e-6) and at_y != pytest.approx(evaluate(), rel=1e-6)
    _, resumed = train_in(tmp_path / "resumed", record, state)
    assert numbers(resumed) == numbers(full[5:])


def test_prodigy_lr_is_a_multiplier_swept_like_a_peak() -> None:
    plan = make_plan([*TINY_MLP, "optimizer=prodigy", "optimizer.lr=0.5,1.0", "budget=10"])
    assert sorted(r.labels["lr"] for r in plan.runs) == [0.5, 1.0]


def test_a_bad_rest_section_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"optimizer 'muon.rest' \(torch.optim.AdamW\) has no parameter\(s\) momentum"):
        make_plan([*TINY_MLP, "optimizer=muon", "+optimizer.rest.momentum=0.9", "budget=10"])
    with pytest.raises(ConfigError, match="optimizer 'muon': rest must be one optimizer section"):
        make_plan([*TINY_MLP, "optimizer=muon", "optimizer.rest=3", "budget=10"])


@pytest.mark.slow
def test_report_ranks_optimizer_schedule_pairs_per_budget_when_the_optimizer_is_swept(tmp_path: Path) -> None:
    import csv
    import io

    from helpers import cli

    cli("launch", *TINY_MLP, "optimizer=adamw,schedulefree_adamw", "schedule=cosine,constant", "budget=6,12",
        "eval_every=6", "executor=debug", "--name", "pairs", cwd=tmp_path)
    text = cli("report", "results/pairs", "--format", "csv", "--table", "pairs", cwd=tmp_path).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["optimizer"] for r in rows} == {"(compared)"}
    ranking = cli("report", "results/pairs", "--format", "csv", "--table", "ranking", cwd=tmp_path).stdout
    assert {r["optimizer"] for r in csv.DictReader(io.StringIO(ranking))} == {"adamw", "schedulefree_adamw"}  # settings apart
    for budget in ("6", "12"):
        mine = [r for r in rows if r["budget"] == budget]
        assert sorted(r["schedule"] for r in mine) == ["adamw/constant", "adamw/cosine", "schedulefree_adamw/constant",
                                                       "schedulefree_adamw/cosine"]
        assert sorted(int(r["rank"]) for r in mine) == [1, 2, 3, 4]  # one ranking over the four pairs
        means = sorted(float(r["mean"]) for r in mine)
        assert [float(r["mean"]) for r in sorted(mine, key=lambda r: int(r["rank"]))] == means
