"""Schedules: the step-convention table, agreement with torch's schedulers, properties, shipped YAML, errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from schedsweep import schedules
from schedsweep.errors import ScheduleError

CONF = Path(__file__).resolve().parents[1] / "conf" / "schedule"

# ---------------------------------------------------------------------------------------------------
# The step convention, pinned: schedules.md section 14.1, T = 100, peak 1. Values there have 6 digits.

STEPS = (0, 1, 25, 29, 30, 50, 75, 99)
HF_WSD = {"shape": "wsd", "warmup": 0.1, "decay": 0.2}
TABLE: dict[str, tuple[dict[str, Any], list[float]]] = {
    "linear": ({"shape": "linear"}, [1, 0.99, 0.75, 0.71, 0.7, 0.5, 0.25, 0.01]),
    "cosine": ({"shape": "cosine"}, [1, 0.999753, 0.853553, 0.806454, 0.793893, 0.5, 0.146447, 0.00024672]),
    "rex paper": ({"shape": "rex"}, [1, 0.994975, 0.857143, 0.830409, 0.823529, 0.666667, 0.4, 0.019802]),
    "onecycle cos": ({"shape": "onecycle"}, [0.04, 0.0428138, 0.955636, 1, 0.999497, 0.793893, 0.263069, 4e-06]),
    "onecycle linear": (
        {"shape": "onecycle", "anneal": "linear"},
        [0.04, 0.0731034, 0.867586, 1, 0.985714, 0.700001, 0.34286, 4e-06],
    ),
    "onecycle three_phase": (
        {"shape": "onecycle", "three_phase": True},
        [0.04, 0.0428138, 0.955636, 1, 0.997186, 0.209255, 0.0253011, 4e-06],
    ),
    "step 30-60-90": ({"shape": "step"}, [1, 1, 1, 1, 0.1, 0.1, 0.01, 0.001]),
    "exponential 0.01": (
        {"shape": "exponential", "final": 0.01},
        [1, 0.954993, 0.316228, 0.263027, 0.251189, 0.1, 0.0316228, 0.0104713],
    ),
    "HF linear W=10": (
        {"shape": "linear", "warmup": 0.1},
        [0, 0.1, 0.833333, 0.788889, 0.777778, 0.555556, 0.277778, 0.0111111],
    ),
    "HF cosine W=10": (
        {"shape": "cosine", "warmup": 0.1},
        [0, 0.1, 0.933013, 0.894005, 0.883022, 0.586824, 0.178606, 0.000304586],
    ),
    "HF WSD cosine": ({**HF_WSD, "decay_shape": "cosine"}, [0, 0.1, 1, 1, 1, 1, 1, 0.00615583]),
    "HF WSD 1-sqrt": ({**HF_WSD, "decay_shape": "1-sqrt"}, [0, 0.1, 1, 1, 1, 1, 1, 0.0253206]),
    "HF WSD linear": ({**HF_WSD, "decay_shape": "linear"}, [0, 0.1, 1, 1, 1, 1, 1, 0.05]),
}


@pytest.mark.parametrize(("spec", "expected"), TABLE.values(), ids=TABLE.keys())
def test_step_convention_table(spec: dict[str, Any], expected: list[float]) -> None:
    schedule = schedules.build(spec, 100)
    assert [schedule(t) for t in STEPS] == pytest.approx(expected, abs=1e-6)


# epfml wsd_schedule(N=100, n_warmup=10, init_div_factor=100, fract_decay=0.2): warmup starts at 1/100.
EPFML = {  # decay_shape -> values at t = 90, 99
    "linear": (0.5, 0.05),
    "1-sqrt": (0.292893, 0.0253206),
    "cosine": (0.5, 0.00615583),
    "square": (0.75, 0.0975),
}


@pytest.mark.parametrize("decay_shape", EPFML)
def test_epfml_wsd_rows(decay_shape: str) -> None:
    spec = {"shape": "wsd", "warmup": 0.1, "warmup_start": 0.01, "decay": 0.2, "decay_shape": decay_shape}
    schedule = schedules.build(spec, 100)
    got = [schedule(t) for t in (0, 5, 10, 79, 80, 90, 99)]
    assert got == pytest.approx([0.01, 0.505, 1, 1, 1, *EPFML[decay_shape]], abs=1e-6)


def test_values_is_build_at_every_step() -> None:
    schedule = schedules.build({"shape": "cosine", "warmup": 0.1}, 50)
    assert schedules.values({"shape": "cosine", "warmup": 0.1}, 50) == [schedule(t) for t in range(50)]


@pytest.mark.parametrize("shape", sorted(schedules.shapes()))
def test_one_step_budget_is_f0(shape: str) -> None:
    # OneCycleLR's last phase ends at T-1 = 0, so a one-step budget is its minimum, as in torch.
    expected = 1 / 25 / 1e4 if shape == "onecycle" else 1.0
    assert schedules.values({"shape": shape}, 1) == [pytest.approx(expected, rel=1e-12)]


@pytest.mark.parametrize("milestone", [0.3, 0.6, 0.7, 0.9])
def test_step_milestone_lands_on_ceil_of_exact_fraction(milestone: float) -> None:
    # 0.7 * 10 == 7.000000000000001 in floats; the drop must still land on step 7.
    exact = Fraction(str(milestone))
    for total in range(1, 400):
        multipliers = schedules.values({"shape": "step", "milestones": [milestone]}, total)
        first_drop = next((t for t, v in enumerate(multipliers) if v < 1), total)
        assert first_drop == min(math.ceil(exact * total), total), total


# ---------------------------------------------------------------------------------------------------
# Torch agreement: the optimizer LR seen by update t in torch's own loop (record, step, scheduler.step).

BUDGETS = (1, 2, 7, 10, 99, 100, 1000)
Maker = Callable[[torch.optim.Optimizer, int], torch.optim.lr_scheduler.LRScheduler]


def _multistep(optimizer: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LRScheduler:
    # The first step with t/T >= m, from the exact decimal: MultiStepLR([30, 60, 90]) at T = 100.
    milestones = [math.ceil(Fraction(m) * total) for m in ("0.3", "0.6", "0.9")]
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)


# torch LinearLR's end_factor is the multiplier at t = total_iters = T, after the last update: the same
# convention as `final` here (z = t/T), so LinearLR(1, final, T) is compared as is.
TORCH: dict[str, tuple[dict[str, Any], Maker]] = {
    "linear": ({"shape": "linear"}, lambda o, T: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.0, T)),
    "linear final 0.1": (
        {"shape": "linear", "final": 0.1},
        lambda o, T: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.1, T),
    ),
    "cosine": ({"shape": "cosine"}, lambda o, T: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T)),
    "cosine final 0.1": (
        {"shape": "cosine", "final": 0.1},
        lambda o, T: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T, eta_min=0.1),
    ),
    "onecycle cos": (
        {"shape": "onecycle"},
        lambda o, T: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=T),
    ),
    "onecycle linear": (
        {"shape": "onecycle", "anneal": "linear"},
        lambda o, T: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=T, anneal_strategy="linear"),
    ),
    "onecycle three_phase": (
        {"shape": "onecycle", "three_phase": True},
        lambda o, T: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=T, three_phase=True),
    ),
    "onecycle pct 0.25 div 10": (
        {"shape": "onecycle", "pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0},
        lambda o, T: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=1.0, total_steps=T, pct_start=0.25, div_factor=10.0, final_div_factor=100.0
        ),
    ),
    "step 30-60-90": ({"shape": "step"}, _multistep),
    "exponential 0.01": (
        {"shape": "exponential", "final": 0.01},
        lambda o, T: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.01 ** (1 / T)),
    ),
}


def _torch_lrs(make: Maker, total: int) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0, momentum=0.9)  # OneCycleLR cycles momentum: needs some
    scheduler = make(optimizer, total)
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("total", BUDGETS)
@pytest.mark.parametrize(("spec", "make"), TORCH.values(), ids=TORCH.keys())
def test_matches_torch_scheduler(spec: dict[str, Any], make: Maker, total: int) -> None:
    ours = schedules.values(spec, total)
    theirs = _torch_lrs(make, total)
    bad = [t for t, (a, b) in enumerate(zip(ours, theirs)) if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)]
    assert len(ours) == len(theirs) == total
    assert not bad, f"first mismatch at t={bad[0]}: ours {ours[bad[0]]!r}, torch {theirs[bad[0]]!r}"


def test_schedule_is_a_lambdalr_lr_lambda() -> None:
    spec = {"shape": "wsd", "warmup": 0.1, "decay_shape": "cosine"}
    lambda_lr = lambda o, T: torch.optim.lr_scheduler.LambdaLR(o, schedules.build(spec, T))  # noqa: E731
    assert _torch_lrs(lambda_lr, 100) == schedules.values(spec, 100)


# ---------------------------------------------------------------------------------------------------
# Properties over random valid parameters and budgets.

EPS = 1e-12
unit = st.floats(0.0, 1.0)
common = {"warmup": st.floats(0.0, 0.5), "warmup_start": unit}
increasing = st.lists(st.floats(0.01, 0.99), max_size=4, unique=True).map(sorted)
decay_shape = st.sampled_from(["linear", "cosine", "1-sqrt", "square", "exp"])
SPECS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "constant": st.fixed_dictionaries({"shape": st.just("constant"), **common}),
    "linear": st.fixed_dictionaries({"shape": st.just("linear"), **common, "final": unit}),
    "cosine": st.fixed_dictionaries({"shape": st.just("cosine"), **common, "final": unit}),
    "rex": st.fixed_dictionaries({"shape": st.just("rex"), **common, "final": unit}),
    "exponential": st.fixed_dictionaries({"shape": st.just("exponential"), **common, "final": st.floats(1e-6, 1.0)}),
    "step": st.fixed_dictionaries(
        {"shape": st.just("step"), **common, "milestones": increasing, "gamma": st.floats(1e-3, 1.0)}
    ),
    "wsd": st.fixed_dictionaries(
        {"shape": st.just("wsd"), **common, "decay": st.floats(0.0, 0.5), "decay_shape": decay_shape,
         "final": st.floats(1e-6, 1.0)}
    ),
}
onecycle_spec = st.booleans().flatmap(
    lambda three: st.fixed_dictionaries({
        "shape": st.just("onecycle"),
        "pct_start": st.floats(0.01, 0.5 if three else 0.99),
        "div_factor": st.floats(1.0, 1e3),
        "final_div_factor": st.floats(1.0, 1e5),
        "anneal": st.sampled_from(["cos", "linear"]),
        "three_phase": st.just(three),
    })
)
budgets = st.integers(1, 5000)
fast = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _in_unit_interval(multipliers: list[float]) -> bool:
    return all(math.isfinite(v) and -EPS <= v <= 1 + EPS for v in multipliers)


def _non_increasing(multipliers: list[float]) -> bool:
    return all(b <= a + EPS for a, b in zip(multipliers, multipliers[1:]))


def _non_decreasing(multipliers: list[float]) -> bool:
    return all(b >= a - EPS for a, b in zip(multipliers, multipliers[1:]))


@pytest.mark.parametrize("shape", sorted(SPECS))
@fast
@given(data=st.data(), total=budgets)
def test_warmup_then_decay_properties(shape: str, data: st.DataObject, total: int) -> None:
    spec = data.draw(SPECS[shape])
    warmup = schedules.to_steps(spec["warmup"], total)
    decay = schedules.to_steps(spec.get("decay", 0.0), total)
    assume(warmup < total and warmup + decay <= total)  # rejected at that budget (see test_bad_spec)
    multipliers = schedules.values(spec, total)
    assert _in_unit_interval(multipliers)
    assert _non_decreasing(multipliers[:warmup])
    assert _non_increasing(multipliers[warmup:])
    assert multipliers[0] == (spec["warmup_start"] if warmup else 1.0)
    if warmup:  # continuity at the join: the last warmup step is one step's worth of slope below the peak
        jump = multipliers[warmup] - multipliers[warmup - 1]
        assert -EPS <= jump <= (1 - spec["warmup_start"]) / warmup + EPS


@fast
@given(spec=onecycle_spec, total=budgets)
def test_onecycle_properties(spec: dict[str, Any], total: int) -> None:
    multipliers = schedules.values(spec, total)
    peak = multipliers.index(max(multipliers))
    assert _in_unit_interval(multipliers)
    assert _non_decreasing(multipliers[: peak + 1])
    assert _non_increasing(multipliers[peak:])
    assert multipliers[-1] == pytest.approx(1 / spec["div_factor"] / spec["final_div_factor"], rel=1e-12)


# ---------------------------------------------------------------------------------------------------
# Shipped YAML files.

YAMLS = sorted(CONF.glob("*.yaml"))


def test_every_shape_ships_a_yaml() -> None:
    assert [p.stem for p in YAMLS] == sorted(schedules.shapes())


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.stem)
def test_shipped_yaml_lists_every_parameter_and_passes_check(path: Path) -> None:
    spec = OmegaConf.load(path)
    info = schedules.shapes()[spec.shape]
    assert set(spec) == {"shape", *schedules.LABEL_KEYS, *info.parameters}
    for total in (1, 10, 100, 1000):
        schedules.check(spec, total, path.stem)


def test_shapes_registry() -> None:
    info = schedules.shapes()
    assert set(info) == {"constant", "linear", "cosine", "step", "exponential", "onecycle", "rex", "wsd"}
    assert info["wsd"].parameters == {
        "warmup": 0.0, "warmup_start": 0.0, "decay": 0.2, "decay_shape": "linear", "final": 0.0,
    }
    assert "warmup" not in info["onecycle"].parameters
    assert all(i.summary and "\n" not in i.summary for i in info.values())


# ---------------------------------------------------------------------------------------------------
# Bad input: one ScheduleError whose message names the key, the value and what is allowed.

BAD: dict[str, tuple[Any, int, list[str]]] = {
    "unknown shape": ({"shape": "cosin"}, 100, ["'cosin'", *schedules.shapes()]),
    "missing shape": ({"final": 0.0}, 100, ["None", "constant", "wsd"]),
    "not a mapping": ("cosine", 100, ["mapping", "shape"]),
    "shape not a string": ({"shape": ["cosine"]}, 100, ["['cosine']", "constant", "wsd"]),
    "unknown key": (
        {"shape": "cosine", "min_lr": 0.1}, 100, ["'min_lr'", "warmup=0.0", "warmup_start=0.0", "final=0.0"],
    ),
    "warmup + decay > 1": ({"shape": "wsd", "warmup": 0.5, "decay": 0.6}, 100, ["warmup = 0.5", "decay = 0.6", "<= 1"]),
    "warmup + decay steps > T": (
        {"shape": "wsd", "warmup": 0.5, "decay": 0.5}, 3, ["3 steps", "warmup rounds to 2 steps", "decay = 0.5"],
    ),
    "negative warmup": ({"shape": "linear", "warmup": -0.1}, 100, ["warmup = -0.1", "[0, 1)"]),
    "warmup of 1": ({"shape": "cosine", "warmup": 1.0}, 100, ["warmup = 1.0", "[0, 1)"]),
    "warmup is the whole budget": ({"shape": "linear", "warmup": 0.5}, 1, ["warmup = 0.5", "1 steps", "at least one"]),
    "gamma 0": ({"shape": "step", "gamma": 0.0}, 100, ["gamma = 0.0", "(0, 1]"]),
    "gamma negative": ({"shape": "step", "gamma": -0.5}, 100, ["gamma = -0.5", "(0, 1]"]),
    "milestones decreasing": ({"shape": "step", "milestones": [0.6, 0.3]}, 100, ["milestones", "increasing", "(0, 1)"]),
    "milestone at 1": ({"shape": "step", "milestones": [0.5, 1.0]}, 100, ["milestones", "(0, 1)"]),
    "milestones not a list": ({"shape": "step", "milestones": 0.3}, 100, ["milestones", "list of numbers"]),
    "bad decay_shape": (
        {"shape": "wsd", "decay_shape": "sqrt"}, 100,
        ["decay_shape = 'sqrt'", "linear", "cosine", "1-sqrt", "square", "exp"],
    ),
    "exponential final 0": ({"shape": "exponential", "final": 0.0}, 100, ["final = 0.0", "(0, 1]"]),
    "wsd exp final 0": ({"shape": "wsd", "decay_shape": "exp"}, 100, ["final = 0.0", "(0, 1]", "exp"]),
    "final above 1": ({"shape": "rex", "final": 2}, 100, ["final = 2.0", "[0, 1]"]),
    "final as string": ({"shape": "linear", "final": "0.1"}, 100, ["final = '0.1'", "finite number"]),
    "onecycle warmup": ({"shape": "onecycle", "warmup": 0.05}, 100, ["warmup = 0.05", "pct_start", "own warm-up"]),
    "onecycle warmup_start": ({"shape": "onecycle", "warmup_start": 0.1}, 100, ["'warmup_start'", "pct_start=0.3"]),
    "onecycle anneal": ({"shape": "onecycle", "anneal": "cosine"}, 100, ["anneal = 'cosine'", "'cos' or 'linear'"]),
    "onecycle three_phase pct": (
        {"shape": "onecycle", "three_phase": True, "pct_start": 0.6}, 100, ["pct_start = 0.6", "(0, 0.5]"],
    ),
    "onecycle three_phase not bool": (
        {"shape": "onecycle", "three_phase": "yes"}, 100, ["three_phase", "true or false"],
    ),
    "onecycle div_factor": ({"shape": "onecycle", "div_factor": 0.5}, 100, ["div_factor = 0.5", ">= 1"]),
    "budget 0": ({"shape": "cosine"}, 0, ["budget", ">= 1", "0"]),
}


@pytest.mark.parametrize(("spec", "total", "fragments"), BAD.values(), ids=BAD.keys())
def test_bad_spec(spec: Any, total: int, fragments: list[str]) -> None:
    with pytest.raises(ScheduleError) as caught:
        schedules.build(spec, total)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_onecycle_accepts_zero_warmup() -> None:
    # A sweep-wide `schedule.warmup=0` override must not break onecycle.
    assert schedules.values({"shape": "onecycle", "warmup": 0}, 100) == schedules.values({"shape": "onecycle"}, 100)


def test_label_keys_are_ignored() -> None:
    labelled = {"shape": "rex", "description": "anything", "source": "anywhere"}
    assert schedules.values(labelled, 30) == schedules.values({"shape": "rex"}, 30)


def test_check_names_schedule_budget_and_build_error() -> None:
    with pytest.raises(ScheduleError, match=r"Schedule 'my_wsd': .* budget of 3 steps: warmup rounds to 2 steps"):
        schedules.check({"shape": "wsd", "warmup": 0.5, "decay": 0.5}, 3, "my_wsd")


@pytest.mark.parametrize("bad", [1.5, -0.25, math.nan, math.inf])
def test_check_names_first_bad_step(monkeypatch: pytest.MonkeyPatch, bad: float) -> None:
    monkeypatch.setattr(schedules, "build", lambda spec, total: lambda t: bad if t >= 3 else 1.0)
    with pytest.raises(ScheduleError, match=r"'odd' at a budget of 10 steps .* at step 3 \(the first bad step\)"):
        schedules.check({"shape": "constant"}, 10, "odd")


def test_check_is_quick_for_large_budgets() -> None:
    schedules.check({"shape": "wsd", "warmup": 0.05, "decay_shape": "1-sqrt"}, 100_000, "wsd")
