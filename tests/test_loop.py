"""The training loop's scale features on the real loop: parameter groups, precision, accumulation,
resumable data and deferred metric reads."""

from __future__ import annotations

import dataclasses

import math
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

from schedsweep import schedules, tasks
from schedsweep.train import checkpoint, groups, loop, optimizers
from schedsweep.errors import ConfigError, TaskError
from schedsweep.plan.grid import make_plan
from schedsweep.plan.point import RunKeys
from schedsweep.tasks.charlm import CharLM

from helpers import TINY_LM, TINY_MLP, numbers, run_record, train_in









class Linear2:
    """loss = a * w1 + b * w2: constant gradients, so SGD moves w by exactly lr_group(t) * gradient."""

    def __init__(self, scale: float = 0.1, seed: int = 0) -> None:
        self.scale = scale

    def build_model(self) -> torch.nn.Module:
        model = torch.nn.Module()
        model.w1 = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
        model.w2 = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
        return model

    def param_groups(self, model: torch.nn.Module) -> list[dict[str, Any]]:
        return [{"params": [model.w1]}, {"params": [model.w2], "lr_scale": self.scale}]

    def batches(self, start: int = 0) -> Iterator[torch.Tensor]:
        while True:
            yield torch.zeros(1)

    def loss(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return 2.0 * model.w1 + 3.0 * model.w2

    def evaluate(self, model: torch.nn.Module) -> float:
        return 0.0


def test_each_group_gets_peak_times_scale_times_schedule_and_the_log_keeps_base_lr(tmp_path: Path) -> None:
    record = run_record(["task=custom", "task._target_=test_loop.Linear2", "optimizer=sgd", "optimizer.lr=0.5",
                         "optimizer.momentum=0.0", "schedule=linear", "budget=20", "full_steps=20"])
    record["log"]["checkpoint_every"] = 19  # the checkpoint at step 19 holds the weights after 19 updates
    status, rows = train_in(tmp_path, record)
    assert status.status == "done"
    f = schedules.build(record["spec"]["schedule"], 20)
    assert [r["lr"] for r in rows] == pytest.approx([0.5 * f(t) for t in range(20)], rel=1e-12)
    moved = sum(f(t) for t in range(19))
    weights = checkpoint.load(tmp_path)["model"]
    assert weights["w1"].item() == pytest.approx(-2.0 * 0.5 * moved, rel=1e-12)
    assert weights["w2"].item() == pytest.approx(-3.0 * 0.05 * moved, rel=1e-12)  # lr_scale 0.1
    assert rows[19]["loss"] == pytest.approx(2.0 * weights["w1"].item() + 3.0 * weights["w2"].item(), rel=1e-12)


def test_builtin_tasks_decay_matrices_only() -> None:
    task = CharLM(context=16, d_model=16, n_layers=1, n_heads=2)
    model = task.build_model()
    decay, no_decay = task.param_groups(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in decay["params"]) == sorted(
        ["tok.weight", "pos.weight", "blocks.0.qkv.weight", "blocks.0.proj.weight", "blocks.0.fc.weight", "blocks.0.out.weight"])
    assert no_decay["weight_decay"] == 0.0
    assert all(n.endswith("bias") or ".ln" in n or n.startswith("ln") for n in (names[id(p)] for p in no_decay["params"]))
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_the_optimizer_gets_the_task_groups_with_their_weight_decay() -> None:
    record = run_record([*TINY_MLP, "optimizer=adamw", "optimizer.weight_decay=0.5", "budget=5", "full_steps=5",
                         "task.depth=0"])
    task = tasks.build(record["spec"]["task"], 0)
    model = task.build_model()
    opt = optimizers.build(record["spec"]["optimizer"], model, groups.task_groups(task, model))
    wds = sorted((g["weight_decay"], tuple(p.dim() for p in g["params"])) for g in opt.param_groups)
    assert wds == [(0.0, (1,)), (0.5, (2,))]


def test_bad_param_groups_are_one_clear_error() -> None:
    model = torch.nn.Linear(2, 2)

    class Half:
        def param_groups(self, m: torch.nn.Module) -> list[dict]:
            return [{"params": [m.weight], "lr_scale": -1}]

    with pytest.raises(TaskError, match="lr_scale -1"):
        groups.task_groups(Half(), model)

    class Missing:
        def param_groups(self, m: torch.nn.Module) -> list[dict]:
            return [{"params": [m.weight]}]

    with pytest.raises(TaskError, match=r"leaves out 1 trainable parameter\(s\) \(shapes \[\(2,\)\]\)"):
        groups.task_groups(Missing(), model)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains_close_to_fp32_on_cpu(tmp_path: Path, precision: str) -> None:
    base = [*TINY_LM, "budget=30", "full_steps=30", "eval_every=30"]
    _, full = train_in(tmp_path / "fp32", run_record(base))
    record = run_record([*base, f"precision={precision}"])
    assert record["spec"]["precision"] == precision
    status, low = train_in(tmp_path / precision, record)
    assert status.status == "done"
    assert low[0]["loss"] != full[0]["loss"]  # autocast really ran the forward pass in low precision
    assert low[-1]["eval_loss"] == pytest.approx(full[-1]["eval_loss"], rel=0.05)
    assert low[-1]["eval_loss"] < low[0]["loss"] - 0.3


def test_fp16_scaler_state_is_checkpointed(tmp_path: Path) -> None:
    record = run_record([*TINY_MLP, "precision=fp16", "budget=10", "full_steps=10"])
    record["log"]["checkpoint_every"] = 5
    train_in(tmp_path, record)
    state = checkpoint.load(tmp_path)
    assert state["step"] == 5 and state["scaler"]["scale"] > 0


class Rows:
    """Fixed regression rows served in order: batch i = rows [i * b, (i + 1) * b)."""

    def __init__(self, batch_size: int = 8, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(4096, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(4096, generator=g)
        self.b, self.seed = batch_size, seed

    def build_model(self) -> torch.nn.Module:
        with tasks.seeded(self.seed):
            return torch.nn.Linear(4, 1)

    def batches(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        i = start
        while True:
            lo = (i * self.b) % 4096
            yield self.x[lo:lo + self.b], self.y[lo:lo + self.b]
            i += 1

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(model(x).squeeze(1), y)

    def evaluate(self, model: torch.nn.Module) -> float:
        return torch.nn.functional.mse_loss(model(self.x[:256]).squeeze(1), self.y[:256]).item()


def test_accumulating_two_half_batches_equals_one_full_batch(tmp_path: Path) -> None:
    common = ["task=custom", "task._target_=test_loop.Rows", "optimizer=sgd", "budget=20", "full_steps=20", "eval_every=10"]
    _, one = train_in(tmp_path / "one", run_record([*common, "+task.batch_size=16"]))
    record = run_record([*common, "+task.batch_size=8", "accumulate=2"])
    _, two = train_in(tmp_path / "two", record)
    assert [r["samples_seen"] for r in two] == [16 * (t + 1) for t in range(20)]
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)  # mean of the micro-batch losses
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-5)
    assert two[-1]["eval_loss"] == pytest.approx(one[-1]["eval_loss"], rel=1e-5)


def test_scale_keys_enter_the_run_id_only_off_their_defaults() -> None:
    (default,) = make_plan([*TINY_MLP, "budget=10"]).runs
    assert not {"precision", "accumulate", "compile"} & set(default.spec)
    (logged,) = make_plan([*TINY_MLP, "budget=10", "log_every=50"]).runs
    assert logged.id == default.id and logged.log["log_every"] == 50
    ids = {make_plan([*TINY_MLP, "budget=10", o]).runs[0].id for o in ("precision=bf16", "precision=fp16", "accumulate=2", "compile=true")}
    assert len(ids) == 4 and default.id not in ids
    for bad, message in (("precision=fp8", "precision must be fp32, bf16 or fp16; got 'fp8'"),
                         ("accumulate=0", "accumulate must be an integer >= 1; got 0"),
                         ("log_every=0", "log_every must be an integer >= 1; got 0")):
        with pytest.raises(ConfigError, match=message):
            make_plan([*TINY_MLP, "budget=10", bad])


def test_builtin_streams_start_anywhere_without_replaying() -> None:
    for task in (CharLM(context=16, d_model=16, n_layers=1, n_heads=2, batch_size=4),
                 tasks.build({"_target_": "schedsweep.tasks.classifier.Classifier", "n_train": 40, "batch_size": 16}, 3)):
        stream = task.batches()
        ahead = [next(stream) for _ in range(7)]
        for start in (0, 1, 2, 5):  # classifier: 2 batches per epoch, so 5 is mid-epoch three epochs in
            jumped = task.batches(start)
            for want in ahead[start:]:
                got = next(jumped)
                assert all(torch.equal(a, b) for a, b in zip(got, want))


class Counting(Rows):
    """Rows whose batches() takes no start: the loop must replay it."""

    drawn = 0

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # type: ignore[override]
        for batch in super().batches(0):
            Counting.drawn += 1
            yield batch


def test_resume_jumps_for_builtin_tasks_and_replays_with_a_warning_otherwise(tmp_path: Path) -> None:
    for target, warns in (("test_loop.Rows", False), ("test_loop.Counting", True)):
        record = run_record(["task=custom", f"task._target_={target}", "optimizer=sgd", "budget=12", "full_steps=12",
                             "accumulate=2"])
        record["log"]["checkpoint_every"] = 5
        _, full = train_in(tmp_path / target / "full", record)
        state = checkpoint.load(tmp_path / target / "full")
        assert state["step"] == 10
        Counting.drawn = 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, resumed = train_in(tmp_path / target / "resumed", record, state)
        messages = [str(w.message) for w in caught if "replays" in str(w.message)]
        if warns:
            assert messages == ["task Counting: batches() takes no start, so resuming replays 20 batches from the "
                                "beginning of its stream; define batches(self, start: int = 0) to jump there."]
            assert Counting.drawn == 20 + 4
        else:
            assert messages == []
        assert numbers(resumed) == numbers(full[10:])


def test_deferred_reads_write_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA path (read every log_every steps) run on CPU: same rows, divergence included."""
    cases = {"fine": [*TINY_MLP, "budget=23", "full_steps=23", "eval_every=10"],
             "diverges": ["task=custom", "task._target_=test_loop.Rows", "optimizer=sgd", "optimizer.lr=3", "budget=60",
                          "full_steps=60", "eval_every=50"]}
    for name, overrides in cases.items():
        record = run_record([*overrides, "log_every=7"])
        per_step_status, per_step = train_in(tmp_path / name / "a", record)
        monkeypatch.setattr(loop, "read_every", lambda device, log_every: log_every)
        deferred_status, deferred = train_in(tmp_path / name / "b", record)
        monkeypatch.undo()
        assert numbers(deferred) == numbers(per_step)
        assert (deferred_status.status, deferred_status.steps_done) == (per_step_status.status, per_step_status.steps_done)
        if name == "diverges":
            assert per_step_status.status == "diverged" and not math.isfinite(per_step[-1]["loss"])
            assert per_step[-1]["grad_norm"] is None and per_step_status.steps_done < 50


def test_precision_name_is_checked_at_run_time_too() -> None:
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16, fp16; got 'int8'"):
        loop.Precision("int8", torch.device("cpu"))


@pytest.mark.slow
def test_plan_keys_are_known() -> None:
    assert {"precision", "accumulate", "compile", "log_every"} <= {f.name for f in dataclasses.fields(RunKeys)}


@pytest.mark.slow  # torch.compile's first CPU compilation takes ~1 min (inductor builds C++)
def test_compiled_training_matches_eager(tmp_path: Path) -> None:
    common = ["task=custom", "task._target_=test_loop.Rows", "optimizer=sgd", "budget=8", "full_steps=8", "eval_every=4"]
    _, eager = train_in(tmp_path / "eager", run_record(common))
    record = run_record([*common, "compile=true"])
    assert record["spec"]["compile"] is True
    torch._dynamo.reset()
    status, compiled = train_in(tmp_path / "compiled", record)
    assert status.status == "done" and torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert [r["loss"] for r in compiled] == pytest.approx([r["loss"] for r in eager], rel=1e-5)
    assert compiled[-1]["eval_loss"] == pytest.approx(eager[-1]["eval_loss"], rel=1e-5)
