"""The planner: grid expansion with Hydra's grammar, run ids, budgets, and plan-time validation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from schedsweep.errors import ConfigError
from schedsweep.plan.grid import make_plan
from schedsweep.plan.point import budget_steps

FAST = ["task=classifier", "full_steps=100"]


def test_grid_is_the_product_of_every_sweep_override() -> None:
    plan = make_plan([*FAST, "schedule=linear,cosine", "budget=0.1,1.0", "optimizer=sgd,adamw", "optimizer.lr=0.03,0.1", "seed=0,1"])
    assert len(plan.runs) == 2 * 2 * 2 * 2 * 2
    assert plan.counts == {"schedule": 2, "budget": 2, "optimizer": 2, "optimizer.lr": 2, "seed": 2}
    points = {(r.labels["schedule"], r.labels["budget"], r.labels["optimizer"], r.labels["lr"], r.labels["seed"]) for r in plan.runs}
    assert len(points) == 32
    run = next(r for r in plan.runs if r.labels["budget"] == 0.1 and r.labels["optimizer"] == "sgd")
    assert run.spec["steps"] == 10
    assert run.spec["optimizer"]["_target_"] == "torch.optim.SGD"
    assert run.spec["optimizer"]["lr"] in (0.03, 0.1)


def test_range_choice_and_absolute_budgets() -> None:
    plan = make_plan([*FAST, "seed=range(3)", "optimizer.lr=choice(0.01,0.02)", "budget=0.5,40"])
    assert sorted({r.labels["seed"] for r in plan.runs}) == [0, 1, 2]
    assert sorted({r.spec["steps"] for r in plan.runs}) == [40, 50]
    assert len(plan.runs) == 12


def test_yaml_sweep_block_is_the_default_and_the_command_line_wins() -> None:
    default = make_plan(FAST)
    assert sorted(r.labels["budget"] for r in default.runs) == [0.1, 0.25, 0.5, 1.0]
    cli = make_plan([*FAST, "budget=0.5"])
    assert [r.labels["budget"] for r in cli.runs] == [0.5]


def test_a_study_is_a_file_in_the_users_config_dir(tmp_path: Path) -> None:
    (tmp_path / "study").mkdir()
    (tmp_path / "schedule").mkdir()
    (tmp_path / "study" / "mine.yaml").write_text(
        textwrap.dedent(
            """\
            # @package _global_
            full_steps: 50
            sweep:
              schedule: [linear, rex_warm]
              budget: "0.2,1.0"
              seed: range(0,2)
            """
        )
    )
    (tmp_path / "schedule" / "rex_warm.yaml").write_text("shape: rex\nwarmup: 0.1\ndescription: REX with warm-up\n")
    plan = make_plan(["task=classifier", "+study=mine"], config_dir=tmp_path)
    assert len(plan.runs) == 2 * 2 * 2
    warm = next(r for r in plan.runs if r.labels["schedule"] == "rex_warm")
    assert warm.spec["schedule"] == {"shape": "rex", "warmup": 0.1}  # the description is a label


@pytest.mark.slow
def test_run_ids_are_the_same_in_another_process() -> None:
    # Golden ids and every normalisation rule: tests/test_identity.py.
    code = "from schedsweep.plan.grid import make_plan; print(sorted(r.id for r in make_plan(['task=classifier','full_steps=100']).runs))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == str(sorted(r.id for r in make_plan(FAST).runs))


def test_labels_and_log_intervals_do_not_change_the_id() -> None:
    a = make_plan([*FAST, "budget=0.5"]).runs[0]
    b = make_plan([*FAST, "budget=0.5", "eval_every=7", "schedule.description=other words"]).runs[0]
    c = make_plan([*FAST, "budget=50"]).runs[0]  # 50 absolute steps = 50% of 100: the same run
    d = make_plan([*FAST, "budget=0.5", "seed=1"]).runs[0]
    assert a.id == b.id == c.id != d.id


def test_identical_grid_points_are_planned_once() -> None:
    plan = make_plan([*FAST, "budget=0.5", "seed=0,0,1"])
    assert len(plan.runs) == 2 and plan.duplicates == 1
    assert plan.merged == {"the same grid point twice": 1} and not any(r.aliases for r in plan.runs)
    # budget=50 of 100 steps is budget=0.5: named by what differs, with no alias (only schedule names are)
    both = make_plan([*FAST, "budget=0.5,50"])
    assert (len(both.runs), both.merged) == (1, {"budget=50 = budget=0.5": 1})


def test_default_name_is_readable_and_follows_the_plan() -> None:
    a, b = make_plan([*FAST, "budget=0.5"]), make_plan([*FAST, "budget=0.5,1.0"])
    assert a.name.startswith("classifier-1runs-") and b.name.startswith("classifier-2runs-")
    assert make_plan([*FAST, "budget=0.5"]).name == a.name
    assert make_plan([*FAST, "budget=0.5"], name="mine").name == "mine"


def test_budget_steps() -> None:
    assert budget_steps(0.1, 300) == 30
    assert budget_steps(1.0, 300) == 300
    assert budget_steps(1, 300) == 300
    assert budget_steps(500, 300) == 500
    assert budget_steps(0.01, 200) == 2
    for bad in (0, -0.5, 1.5, "x", True):
        with pytest.raises(ConfigError):
            budget_steps(bad, 300)


@pytest.mark.parametrize(("budget", "full_steps", "steps"), [(0.001, 300, 0), (0.005, 300, 2), (0.004, 300, 1), (1.0, 1, 1)])
def test_a_budget_must_give_at_least_two_steps(budget: float, full_steps: int, steps: int) -> None:
    if steps >= 2:
        assert budget_steps(budget, full_steps) == steps
        return
    with pytest.raises(ConfigError) as info:
        budget_steps(budget, full_steps)
    assert f"budget {budget!r} of full_steps={full_steps} rounds to {steps} step(s); a run needs at least 2" in str(info.value)


@pytest.mark.parametrize(("overrides", "key", "reason"), [
    (["optimizer=adamw", "optimizer.betas=[2,3]"], "optimizer.betas=[2, 3]", "Invalid beta parameter at index 0: 2"),
    (["optimizer=sgd", "optimizer.momentum=-1"], "optimizer.momentum=-1", "Invalid momentum value: -1"),
    (["optimizer=sgd", "optimizer.momentum=0.5,-1"], "optimizer.momentum=-1", "Invalid momentum value: -1"),
])
def test_each_distinct_optimizer_config_is_built_at_plan_time(overrides: list[str], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_plan([*FAST, "budget=0.5", *overrides])
    assert f"{key} is rejected by torch.optim." in str(info.value) and reason in str(info.value)
    assert "Set " + key.split("=")[0] + " to an allowed value" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["schedule=nope"], "unknown schedule 'nope'. Valid schedule options: autolrs, constant, cosine"),
        (["schedule=linear,nope"], "unknown schedule 'nope'"),
        (["optimizer=adam"], "Valid optimizer options: adamw, lion, muon, prodigy, schedulefree_adamw, schedulefree_sgd, sgd"),
        (["task=cifar"], "unknown task 'cifar'"),
        (["task=cifar"], "add your own as DIR/task/cifar.yaml and pass --config-dir DIR"),
        (["optimizer.lrr=0.1,0.2"], "cannot sweep 'optimizer.lrr': no such key"),
        (["optimizer.lrr=0.1"], "Could not override 'optimizer.lrr'"),
        (["+foo=1"], "unknown top-level key(s) foo"),
        (["budget=0"], "budget 0 is not allowed"),
        (["budget=-0.5,1.0"], "budget -0.5 is not allowed"),
        (["budget=1.5"], "budget 1.5 is not allowed"),
        (["optimizer.lr=0"], "lr (the peak learning rate) must be a number > 0"),
        (["schedule=wsd", "schedule.warmup=0.5", "schedule.decay=0.6"], "warmup"),
        (["seed=range(0)"], "zero runs"),
        (["seed=interval(0,1)"], "interval()"),
        (["seed=-1"], "seed must be an integer >= 0"),
        (["full_steps=1,2"], "'full_steps' cannot be swept"),
        (["budget=[1,"], "cannot parse override 'budget=[1,'"),
        (["optimizer.momentum=0.5,0.9", "optimizer=sgd,adamw"], "optimizer=adamw"),
        (["task=custom"], "_target_"),
    ],
)
def test_bad_input_is_a_config_error_naming_the_problem(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_plan([*FAST, *overrides])
    assert expected in str(info.value)


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "schedule").mkdir()
    (tmp_path / "schedule" / "broken.yaml").write_text("shape: rex\nwarmup: [0.1,\n")
    with pytest.raises(ConfigError) as info:
        make_plan([*FAST, "schedule=broken"], config_dir=tmp_path)
    assert "broken.yaml" in str(info.value) and "line" in str(info.value)


def test_group_sections_are_swapped_only_when_that_equals_composing_every_combination(tmp_path: Path) -> None:
    from schedsweep import tasks
    from schedsweep.train import optimizers
    from schedsweep.plan.config import composer
    from schedsweep.plan.identity import Identifier
    from schedsweep.plan.point import make_run

    (tmp_path / "schedule").mkdir()
    (tmp_path / "tuned").mkdir()
    # A global option touches keys outside its section: the planner must compose every combination.
    (tmp_path / "schedule" / "short_linear.yaml").write_text("# @package _global_\ntask:\n  hidden: 16\nschedule:\n  shape: linear\n")
    # A tuned file (task x optimizer, coupled) that reaches into the schedule section: no swapping either.
    (tmp_path / "tuned" / "digits_sgd.yaml").write_text("# @package _global_\nfull_steps: 40\nschedule:\n  warmup: 5\n")
    budget = "budget=0.5"
    cases = ((FAST, [], None), (FAST, ["schedule=short_linear,cosine"], tmp_path),
             ([], ["task=classifier,digits,quadratic"], None),  # task and optimizer coupled through conf/tuned
             ([], ["task=classifier,digits"], tmp_path),
             # Equal full_steps and equal AdamW LRs: only the pair's file tells classifier+sgd (0.1) from charlm+sgd (0.3).
             (["full_steps=100"], ["task=classifier,digits"], None))
    for given, extra, config_dir in cases:
        overrides = [*given, "schedule=linear,wsd", "optimizer=sgd,adamw", budget, *extra]
        plan = make_plan(overrides, config_dir=config_dir)
        with composer(config_dir) as c:
            for run in plan.runs:
                axes = run.labels["axes"]
                fixed = [*given, budget, *(f"{k}={v}" for k, v in axes.items())]
                cfg, names = c.compose(fixed, "config")
                cfg.pop("sweep", None)
                assert make_run(cfg, names, axes, Identifier(tasks.identity_params, optimizers.identity_params)) == run
        if extra == ["schedule=short_linear,cosine"]:
            assert {r.spec["task"]["hidden"] for r in plan.runs if r.labels["schedule"] == "short_linear"} == {16}
            assert {r.spec["task"]["hidden"] for r in plan.runs if r.labels["schedule"] != "short_linear"} == {128}
        if extra == ["task=classifier,digits,quadratic"]:  # each (task, optimizer) has its tuned peak LR
            assert {(r.labels["task"], r.labels["optimizer"], r.spec["optimizer"]["lr"]) for r in plan.runs} >= {
                ("digits", "sgd", 0.1), ("quadratic", "adamw", 0.5), ("quadratic", "sgd", 0.015)}
        if given == ["full_steps=100"]:
            assert {(r.labels["task"], r.spec["optimizer"]["lr"]) for r in plan.runs if r.labels["optimizer"] == "sgd"} == {
                ("classifier", 0.1), ("digits", 0.1)}
        if config_dir == tmp_path and "task=classifier,digits" in extra:
            digits_sgd = [r for r in plan.runs if r.labels["task"] == "digits" and r.labels["optimizer"] == "sgd"]
            assert {r.spec["schedule"].get("warmup") for r in digits_sgd} == {5} and {r.spec["steps"] for r in digits_sgd} == {20}


@pytest.mark.parametrize(("override", "expected"), [
    ("optimizer.lr=-0.1", "lr (the peak learning rate) must be a number > 0"),
    ("+optimizer.lrr=0.1", "optimizer 'adamw' (torch.optim.AdamW) has no parameter(s) lrr. Valid: lr, betas"),
])
@pytest.mark.slow
def test_a_dry_run_checks_optimizer_keys_without_torch(override: str, expected: str) -> None:
    code = f"""
import sys
from schedsweep.errors import ConfigError
from schedsweep.plan.grid import make_plan
try:
    make_plan({[*FAST, "budget=0.5", override]!r}, check_imports=False)
except ConfigError as e:
    print(str(e))
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert expected in out and out.split()[-1] == "False"


@pytest.mark.parametrize(("overrides", "expected"), [
    (["optimizer=adamw", "optimizer.betas=[2,3]"], "optimizer.betas=[2, 3] is rejected by torch.optim.AdamW"),
    (["optimizer=sgd", "optimizer.momentum=-1"], "optimizer.momentum=-1 is rejected by torch.optim.SGD"),
    (["budget=0.004", "full_steps=300"], "budget 0.004 of full_steps=300 rounds to 1 step(s); a run needs at least 2"),
])
@pytest.mark.slow
def test_cli_values_are_checked_at_plan_time(tmp_path: Path, overrides: list[str], expected: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "schedsweep", "launch", *FAST, "budget=0.5", *overrides, "--no-submit"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error:") and expected in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()  # nothing written
