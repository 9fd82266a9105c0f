"""The benchmark suite's tasks (digits, quadratic, regression), their tuned defaults and the rex studies."""

from __future__ import annotations

import inspect
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from schedsweep import tasks
from schedsweep.results import report
from schedsweep.sweep import store
from schedsweep.plan.config import builtin_conf_dir
from schedsweep.errors import TaskError
from schedsweep.plan.grid import make_plan
from schedsweep.sweep.api import Sweep
from schedsweep.tasks import digits, quadratic, regression

CONF = builtin_conf_dir()
SUITE = {"digits": digits.Digits, "quadratic": quadratic.Quadratic, "regression": regression.Regression}
BUILTIN_TASKS = ("classifier", "digits", "quadratic", "regression", "charlm")


def spec(name: str, **params: Any) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(CONF / "task" / f"{name}.yaml")) | params  # type: ignore[operator]


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", SUITE)
def test_yaml_lists_every_constructor_param_with_its_default(name: str) -> None:
    cls = SUITE[name]
    defaults = {n: p.default for n, p in inspect.signature(cls).parameters.items() if n != "seed"}
    assert spec(name) == {"_target_": f"{cls.__module__}.{cls.__name__}"} | defaults
    assert tasks.resolve(spec(name)) is cls


@pytest.mark.parametrize("name", SUITE)
def test_same_seed_same_stream_and_model(name: str) -> None:
    a, b = tasks.build(spec(name), seed=3), tasks.build(spec(name), seed=3)
    assert all(equal(x, y) for x, y in zip(itertools.islice(a.batches(), 5), itertools.islice(b.batches(), 5)))
    assert equal(list(a.build_model().parameters()), list(b.build_model().parameters()))


@pytest.mark.parametrize("name", SUITE)
def test_other_seed_other_batches_same_held_out_score(name: str) -> None:
    a, b = tasks.build(spec(name), seed=0), tasks.build(spec(name), seed=1)
    assert not equal(next(a.batches()), next(b.batches()))
    model = a.build_model()
    assert a.evaluate(model) == b.evaluate(model)


@pytest.mark.parametrize("name", SUITE)
def test_batches_from_a_step_equal_the_stream_with_that_many_skipped(name: str) -> None:
    # batch_size 500 puts 2 batches in an epoch of digits (1,497 images): starts inside, at and past epoch ends
    task = tasks.build(spec(name, batch_size=500), seed=5)
    full = list(itertools.islice(task.batches(), 9))
    for start in (0, 1, 2, 3, 6):
        assert all(equal(x, y) for x, y in zip(itertools.islice(task.batches(start), 9 - start), full[start:], strict=True))


@pytest.mark.parametrize("name", ["digits", "regression"])
def test_epochs_are_permutations_of_the_train_split(name: str) -> None:
    task = tasks.build(spec(name, batch_size=100), seed=0)
    x_train = task.x_train
    per_epoch = len(x_train) // 100
    seen = torch.cat([b[0] for b in itertools.islice(task.batches(), per_epoch)])
    # every train row at most once per epoch: the rows drawn are distinct and all from the train split
    assert len(torch.unique(seen, dim=0)) == len(seen) == per_epoch * 100
    assert len(torch.unique(torch.cat([seen, x_train]), dim=0)) == len(torch.unique(x_train, dim=0))


@pytest.mark.parametrize("name", ["digits", "regression"])
def test_param_groups_exempt_biases_from_weight_decay(name: str) -> None:
    task = tasks.build(spec(name), seed=0)
    model = task.build_model()
    decay, no_decay = task.param_groups(model)
    assert no_decay["weight_decay"] == 0.0 and "weight_decay" not in decay
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert {id(p) for p in decay["params"] + no_decay["params"]} == {id(p) for p in model.parameters()}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_digits_split_is_fixed_and_disjoint() -> None:
    (x_train, y_train), (x_eval, y_eval) = digits.load()
    assert (len(x_train), len(x_eval)) == (1497, 300) and x_train.shape[1] == 64
    assert 0.0 <= float(x_train.min()) and float(x_train.max()) == 1.0
    assert sorted(set(y_train.tolist())) == list(range(10))
    task = tasks.build(spec("digits"), seed=0)
    assert task.build_model()(x_eval).shape == (300, 10)


def test_quadratic_has_the_deepobs_spectrum() -> None:
    q = quadratic.hessian(0).double()
    eigenvalues = torch.linalg.eigvalsh(q)
    assert torch.allclose(q, q.T)
    assert ((eigenvalues[:90] > 0) & (eigenvalues[:90] < 1)).all()
    assert ((eigenvalues[90:] > 30) & (eigenvalues[90:] < 60)).all()
    assert torch.equal(quadratic.hessian(0), quadratic.hessian(0)) and not torch.equal(quadratic.hessian(0), quadratic.hessian(1))


def test_quadratic_evaluate_is_the_expected_loss_minus_its_floor() -> None:
    task = tasks.build(spec("quadratic", batch_size=20_000), seed=0)
    model = task.build_model()
    q = task.q.double()
    theta = torch.ones(100, dtype=torch.float64)
    assert task.evaluate(model) == pytest.approx(0.5 * float(theta @ q @ theta), rel=1e-5)
    floor = 0.5 * 0.6**2 * float(torch.trace(q))
    sampled = task.loss(model, next(task.batches())).item()
    assert sampled == pytest.approx(task.evaluate(model) + floor, rel=0.02)  # 20,000 samples: ~0.5% noise
    with torch.no_grad():
        model.theta.zero_()
    assert task.evaluate(model) == 0.0


def test_regression_standardises_y_on_the_train_split() -> None:
    task = tasks.build(spec("regression"), seed=0)
    assert float(task.y_train.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(task.y_train.std()) == pytest.approx(1.0, abs=1e-5)
    x, y = regression.make_data(10, 3, 0.0, 0)
    expected = (10 * torch.sin(torch.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4])
    assert torch.allclose(y, expected)
    _, noiseless = regression.make_data(10, 100_000, 0.0, 0)
    assert float(noiseless.var()) == pytest.approx(24, rel=0.05)  # the docstring's floor 9 / (24 + 9)


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("digits", {"channels": 0}, "channels must be an integer >= 1"),
        ("digits", {"batch_size": 1498}, "batch_size must be <= 1497"),
        ("quadratic", {"noise": -1.0}, "noise (the std of x) must be a number >= 0"),
        ("quadratic", {"batch_size": 2.5}, "batch_size must be an integer >= 1"),
        ("regression", {"n_features": 4}, "n_features must be an integer >= 5"),
        ("regression", {"batch_size": 64, "n_train": 32}, "batch_size (64) must be <= n_train (32)"),
    ],
)
def test_bad_params_are_named_at_plan_time(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tasks.resolve(spec(name, **params))


# --- tuned defaults and the LR multiplier ---------------------------------------------------------


@pytest.mark.parametrize("task", BUILTIN_TASKS)
def test_every_builtin_task_has_tuned_defaults_for_both_optimizers(task: str) -> None:
    for optimizer in ("sgd", "adamw"):
        tuned = OmegaConf.to_container(OmegaConf.load(CONF / "tuned" / f"{task}_{optimizer}.yaml"))
        (run,) = make_plan([f"task={task}", f"optimizer={optimizer}", "budget=1.0"]).runs
        assert run.labels["steps"] == tuned["full_steps"]  # type: ignore[index]
        assert run.spec["optimizer"]["lr"] == tuned["optimizer"]["lr"]  # type: ignore[index]


def test_command_line_and_lr_mult_over_tuned_defaults() -> None:
    base = OmegaConf.load(CONF / "tuned" / "digits_sgd.yaml")
    runs = make_plan(["task=digits", "optimizer=sgd", "budget=1.0", "lr_mult=0.3,1.0,3.0"]).runs
    assert sorted(r.labels["lr"] for r in runs) == pytest.approx(sorted(base.optimizer.lr * s for s in (0.3, 1.0, 3.0)))
    (run,) = make_plan(["task=digits", "optimizer=sgd", "budget=1.0", "optimizer.lr=0.5", "full_steps=40"]).runs
    assert (run.spec["optimizer"]["lr"], run.labels["steps"]) == (0.5, 40)
    # the same LR reached by a multiplier or given directly is one run
    (scaled,) = make_plan(["task=digits", "optimizer=sgd", "budget=1.0", "optimizer.lr=0.25", "lr_mult=2", "full_steps=40"]).runs
    assert scaled.id == run.id


def test_bad_lr_mult_is_one_message() -> None:
    from schedsweep.errors import ConfigError

    with pytest.raises(ConfigError, match=r"lr_mult \(a multiplier of optimizer.lr\) must be a number > 0; got -1"):
        make_plan(["task=digits", "lr_mult=-1"])


def test_rex_study_grid() -> None:
    plan = make_plan(["+study=rex"])
    assert plan.counts == {"task": 5, "optimizer": 2, "schedule": 9, "budget": 6, "lr_mult": 5, "seed": 3}
    assert len(plan.runs) == 5 * 2 * 9 * 6 * 5 * 3 == 8100
    assert {"rex_step", "rex_exponential", "rex_onecycle", "plateau"} <= {r.labels["schedule"] for r in plan.runs}
    # REX's protocol: 1% is at least 20 updates; LRs in multiples of 3 around the reference
    assert min(r.labels["steps"] for r in plan.runs) == 20
    mults = sorted({r.labels["axes"]["lr_mult"] for r in plan.runs})
    assert all(abs(b / a - 3) < 1e-4 for a, b in zip(mults, mults[1:])) and len(mults) == 5
    # an equal warm-up for every schedule on the transformer task only; rex_onecycle keeps its own rise
    warmups = {(r.labels["task"], r.labels["schedule"]): r.spec["schedule"].get("warmup") for r in plan.runs}
    assert warmups[("charlm", "linear")] == warmups[("charlm", "constant")] == warmups[("charlm", "wsd")] == 0.05
    assert warmups[("classifier", "wsd")] == warmups[("digits", "rex")] == 0
    assert warmups[("charlm", "rex_onecycle")] is None
    # a warm-up given on the command line wins over the study's per-task one
    given = make_plan(["+study=rex_quick", "task=charlm", "schedule=linear", "schedule.warmup=0.1"])
    assert {r.spec["schedule"]["warmup"] for r in given.runs} == {0.1}
    quick = make_plan(["+study=rex_quick"])
    assert quick.counts == {"task": 5, "optimizer": 2, "schedule": 9, "budget": 3, "lr_mult": 1, "seed": 1}
    assert {r.labels["steps"] for r in quick.runs if r.labels["budget"] == 1.0} == {500}


def test_per_task_key_that_no_run_has_is_an_error(tmp_path: Path) -> None:
    from schedsweep.errors import ConfigError

    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "typo.yaml").write_text(
        "# @package _global_\nper_task:\n  digits: {schedule.warmpu: 0.1}\n")
    with pytest.raises(ConfigError, match=r"per_task.digits: no run of task digits has the key\(s\) schedule.warmpu"):
        make_plan(["+study=typo", "task=digits"], config_dir=tmp_path)
    # a block for a task the sweep does not plan is not checked (a study may cover more tasks than one launch)
    assert make_plan(["+study=typo", "task=quadratic"], config_dir=tmp_path).runs
    # a schedule parameter no planned schedule takes is no typo: REX's warm-up with only rex_onecycle planned
    only = make_plan(["+study=rex", "task=regression", "optimizer=adamw", "schedule=rex_onecycle", "budget=1.0", "lr_mult=1"])
    assert len(only.runs) == 3 and all("warmup" not in r.spec["schedule"] for r in only.runs)


# --- end to end ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SUITE)
def test_task_trains_on_the_real_loop_and_learns(name: str, tmp_path: Path) -> None:
    plan = make_plan([f"task={name}", "optimizer=adamw", "schedule=linear", "budget=1.0", "eval_every=1000"])
    (run,) = plan.runs
    short = make_plan([f"task={name}", "optimizer=adamw", "schedule=linear", "budget=1.0", "eval_every=1000",
                       f"full_steps={min(60, run.labels['steps'])}"], name="e2e")
    sweep, _ = Sweep.create(short, tmp_path)
    state = sweep.launch({"kind": "debug", "threads_per_run": 1})
    assert state is not None and state["done"] == 1
    runs = report.load_runs(sweep.path)
    untrained = tasks.build(short.runs[0].spec["task"], seed=0)
    assert float(runs["final_eval_loss"].iloc[0]) < 0.8 * untrained.evaluate(untrained.build_model())


@pytest.mark.slow
def test_rex_quick_study_end_to_end(tmp_path: Path) -> None:
    """The rex_quick study through the CLI at a tiny size (4 steps, one budget, 3 schedules): every task
    and optimizer trains, and the report prints Top-1/Top-3 shares naming every schedule."""
    env = os.environ | {"COLUMNS": "250"}
    args = [sys.executable, "-m", "schedsweep", "launch", "+study=rex_quick", "executor=debug", "executor.threads_per_run=1",
            "full_steps=4", "budget=1.0", "schedule=linear,rex,constant", "task.batch_size=8", "--name", "quick"]
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sweep = tmp_path / "results" / "quick"
    statuses = [store.read_status(store.run_dir(sweep, r["id"])).status for r in store.read_plan(sweep)]
    assert len(statuses) == 5 * 2 * 3 and set(statuses) == {"done"}
    out = subprocess.run([sys.executable, "-m", "schedsweep", "report", str(sweep)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "Top-1" in out.stdout and "Top-3" in out.stdout
    for schedule in ("linear", "rex", "constant"):
        assert schedule in out.stdout
