"""Schedules: the step-convention table, agreement with torch's schedulers, properties, shipped YAML, errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from schedsweep import cli, schedules
from schedsweep.cli import app
from schedsweep.plan.config import composer
from schedsweep.errors import ConfigError, ScheduleError

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
    "PolynomialLR power 2": ({"shape": "polynomial"}, [1, 0.9801, 0.5625, 0.5041, 0.49, 0.25, 0.0625, 0.0001]),
    "REX code (1-z)/(1-0.9z)": (
        {"shape": "rex_beta", "beta": 0.1},
        [1, 0.998991, 0.967742, 0.960758, 0.958904, 0.909091, 0.769231, 0.0917431],
    ),
    "REX beta 0.5 is the paper": (
        {"shape": "rex_beta", "beta": 0.5}, [1, 0.994975, 0.857143, 0.830409, 0.823529, 0.666667, 0.4, 0.019802],
    ),
    "REX beta 1 is linear": ({"shape": "rex_beta", "beta": 1.0}, [1, 0.99, 0.75, 0.71, 0.7, 0.5, 0.25, 0.01]),
    "REX formula": (
        {"shape": "formula", "formula": "(1 - z) / (1 - 0.5 * z)"},
        [1, 0.994975, 0.857143, 0.830409, 0.823529, 0.666667, 0.4, 0.019802],
    ),
    "cosine formula W=10": (
        {"shape": "formula", "formula": "(1 + cos(pi * z)) / 2", "warmup": 0.1},
        [0, 0.1, 0.933013, 0.894005, 0.883022, 0.586824, 0.178606, 0.000304586],
    ),
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


# Extra rows of schedules.md 14.1 and 14.6, and tables at the phase boundaries of the other shapes (T = 100).
BOUNDARIES: dict[str, tuple[dict[str, Any], dict[int, float]]] = {
    "HF constant_with_warmup W=10": ({"shape": "constant", "warmup": 0.1}, {0: 0, 5: 0.5, 10: 1, 99: 1}),
    "multistep 50-75": (
        {"shape": "step", "milestones": [0.5, 0.75]}, {0: 1, 49: 1, 50: 0.1, 74: 0.1, 75: 0.01, 99: 0.01},
    ),
    "HF inverse_sqrt W=10": (
        {"shape": "inverse_sqrt", "warmup": 0.1}, {0: 0, 5: 0.5, 10: 1, 40: 0.5, 90: 0.333333, 99: 0.317821},
    ),
    "inverse_sqrt timescale 0.2, no warmup": ({"shape": "inverse_sqrt", "timescale": 0.2}, {0: 1, 60: 0.5}),
    "infinite Janson (cosine)": (
        {"shape": "infinite", "warmup": 0.05},
        {0: 0, 5: 1, 10: 0.55, 15: 0.1, 50: 0.1, 79: 0.1, 80: 0.1, 90: 0.0316228, 99: 0.1 * 0.1 ** 0.95},
    ),
    "infinite linear cooldown": ({"shape": "infinite", "warmup": 0.05, "cooldown_shape": "linear"}, {10: 0.55}),
    "infinite inverse-sqrt cooldown": (
        {"shape": "infinite", "warmup": 0.05, "cooldown_shape": "inverse-sqrt"}, {5: 1, 10: 0.23753, 15: 0.1},
    ),
    # Uncapped, f(4n)/f(n) = 4^b = 0.493116 (schedules.md 14.7); with a/max_lr = 1 and c = 1, f(n) = n^b.
    "power a/max_lr 1": (
        {"shape": "power", "a": 1.0, "max_lr": 1.0, "tokens_per_step": 1.0},
        {0: 1, 1: 1, 4: 0.493116, 16: 0.493116 ** 2, 99: 99 ** -0.51},
    ),
    "power warmup ramps to the curve (dolomite)": (
        {"shape": "power", "a": 1.0, "max_lr": 1.0, "tokens_per_step": 1.0, "warmup": 0.1},
        {0: 0, 5: 0.5 * 10 ** -0.51, 10: 10 ** -0.51, 40: 40 ** -0.51},
    ),
    "power a capped": ({"shape": "power", "a": 4.6, "max_lr": 0.003, "tokens_per_step": 2048.0}, {0: 1, 99: 1}),
    "power decay tail": (
        {"shape": "power", "a": 1.0, "max_lr": 1.0, "tokens_per_step": 1.0, "decay": 0.2, "decay_shape": "linear",
         "final": 0.0},
        {79: 79 ** -0.51, 80: 80 ** -0.51, 90: 0.5 * 80 ** -0.51, 99: 0.05 * 80 ** -0.51},
    ),
    "cyclic triangular 2 cycles": (
        {"shape": "cyclic", "cycles": 2.0, "low": 0.2}, {0: 0.2, 1: 0.232, 25: 1, 49: 0.232, 50: 0.2, 75: 1, 99: 0.232},
    ),
    "cyclic triangular2": ({"shape": "cyclic", "cycles": 2.0, "low": 0.2, "mode": "triangular2"}, {25: 1, 75: 0.6}),
    "cyclic up 0.25": (
        {"shape": "cyclic", "cycles": 1.0, "up": 0.25, "low": 0.0}, {0: 0, 25: 1, 50: 2 / 3, 99: 1 / 75},
    ),
    "cosine_restarts period 0.1 mult 2": (
        {"shape": "cosine_restarts", "period": 0.1, "mult": 2},
        {0: 1, 5: 0.5, 9: 0.0244717, 10: 1, 20: 0.5, 30: 1, 50: 0.5, 70: 1,
         99: (1 + math.cos(math.pi * 29 / 80)) / 2},
    ),
    "cosine_restarts mult 1 final 0.2": (
        {"shape": "cosine_restarts", "period": 0.25, "final": 0.2},
        {0: 1, 24: 0.2 + 0.8 * (1 + math.cos(math.pi * 24 / 25)) / 2, 25: 1, 50: 1, 75: 1,
         99: 0.2 + 0.8 * (1 + math.cos(math.pi * 24 / 25)) / 2},
    ),
    "piecewise points": (
        {"shape": "piecewise", "points": [[0, 1], [0.5, 1], [1, 0]]}, {0: 1, 50: 1, 75: 0.5, 99: 0.02},
    ),
    "piecewise after warmup": (
        {"shape": "piecewise", "points": [[0, 0.5], [1, 0]], "warmup": 0.1}, {0: 0, 5: 0.25, 10: 0.5, 55: 0.25},
    ),
    "join cosine_inf": (
        {"shape": "join",
         "pieces": [{"shape": "cosine", "final": 0.1, "until": 0.8}, {"shape": "constant", "scale": 0.1}]},
        {0: 1, 40: 0.55, 80: 0.1, 99: 0.1},
    ),
    "join of three, warmup": (
        {"shape": "join", "warmup": 0.2, "pieces": [
            {"shape": "constant", "until": 0.25}, {"shape": "linear", "final": 0.5, "until": 0.75},
            {"shape": "constant", "scale": 0.5}]},
        {0: 0, 10: 0.5, 20: 1, 39: 1, 40: 1, 60: 0.75, 80: 0.5, 99: 0.5},
    ),
    "formula in t, T and W": (
        {"shape": "formula", "formula": "where(t < W, t / W, (T - t) / (T - W))", "warmup": 0.1},
        {0: 0, 5: 0.5, 10: 1, 55: 0.5, 99: 1 / 90},
    ),
    "plateau before any evaluation": ({"shape": "plateau", "warmup": 0.1}, {0: 0, 5: 0.5, 10: 1, 99: 1}),
    # REX's sampling rate, schedules.md 14.2: k = 25 of T = 100, f(25 floor(t/25)).
    "linear every 25": (
        {"shape": "linear", "sample_every": 0.25}, {0: 1, 24: 1, 25: 0.75, 49: 0.75, 50: 0.5, 99: 0.25},
    ),
    "rex every 25": ({"shape": "rex", "sample_every": 0.25}, {0: 1, 24: 1, 25: 0.857143, 50: 0.666667, 99: 0.4}),
    "rex code every 25": (
        {"shape": "rex_beta", "beta": 0.1, "sample_every": 0.25},
        {0: 1, 24: 1, 25: 0.967742, 74: 0.909091, 99: 0.769231},
    ),
    "warmup is sampled too": (
        {"shape": "constant", "warmup": 0.5, "sample_every": 0.1}, {0: 0, 9: 0, 10: 0.2, 49: 0.8, 50: 1},
    ),
}


@pytest.mark.parametrize(("spec", "expected"), BOUNDARIES.values(), ids=BOUNDARIES.keys())
def test_phase_boundary_table(spec: dict[str, Any], expected: dict[int, float]) -> None:
    schedule = schedules.build(spec, 100)
    assert [schedule(t) for t in expected] == pytest.approx(list(expected.values()), abs=1e-6)


def test_values_is_build_at_every_step() -> None:
    schedule = schedules.build({"shape": "cosine", "warmup": 0.1}, 50)
    assert schedules.values({"shape": "cosine", "warmup": 0.1}, 50) == [schedule(t) for t in range(50)]


@pytest.mark.parametrize("spec", [{"shape": "onecycle"}, {"shape": "wsd", "warmup": 0.1, "decay_shape": "1-sqrt"},
                                  {"shape": "infinite", "warmup": 0.05}, {"shape": "formula", "formula": "exp(-4*z)"}])
def test_a_schedule_is_vectorised_and_scalar(spec: dict[str, Any]) -> None:
    schedule = schedules.build(spec, 37)
    array = schedule(np.arange(37))
    assert isinstance(array, np.ndarray) and isinstance(schedule(3), float)
    assert array.tolist() == pytest.approx([schedule(t) for t in range(37)], rel=1e-15, abs=0)


@pytest.mark.parametrize("shape", sorted(set(schedules.shapes()) - {"autolrs"}))  # autolrs: no search fits in 1
def test_one_step_budget_is_f0(shape: str) -> None:
    # OneCycleLR's last phase ends at T-1 = 0, so a one-step budget is its minimum, as in torch; CLR starts at
    # its low end; infinite's cooldown and anneal round to no steps, so one step is its constant phase.
    expected = {"onecycle": 1 / 25 / 1e4, "cyclic": 0.1, "infinite": 0.1}.get(shape, 1.0)
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
    "polynomial power 2": (
        {"shape": "polynomial"}, lambda o, T: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=T, power=2.0),
    ),
    "polynomial power 0.7": (
        {"shape": "polynomial", "power": 0.7},
        lambda o, T: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=T, power=0.7),
    ),
    "cyclic triangular": (
        {"shape": "cyclic", "cycles": 2.5, "up": 0.3, "low": 0.2},
        lambda o, T: torch.optim.lr_scheduler.CyclicLR(
            o, base_lr=0.2, max_lr=1.0, step_size_up=0.3 * (T / 2.5), step_size_down=0.7 * (T / 2.5),
            cycle_momentum=False),
    ),
    "cyclic triangular2": (
        {"shape": "cyclic", "cycles": 3.0, "low": 0.0, "mode": "triangular2"},
        lambda o, T: torch.optim.lr_scheduler.CyclicLR(
            o, base_lr=0.0, max_lr=1.0, step_size_up=0.5 * (T / 3.0), step_size_down=0.5 * (T / 3.0),
            mode="triangular2", cycle_momentum=False),
    ),
    "cosine_restarts mult 1": (
        {"shape": "cosine_restarts", "period": 0.3, "final": 0.1},
        lambda o, T: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            o, T_0=max(1, schedules.to_steps(0.3, T)), eta_min=0.1),
    ),
    "cosine_restarts mult 2": (
        {"shape": "cosine_restarts", "period": 0.07, "mult": 2},
        lambda o, T: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            o, T_0=max(1, schedules.to_steps(0.07, T)), T_mult=2),
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
    assert _torch_lrs(lambda_lr, 100) == pytest.approx(schedules.values(spec, 100), rel=1e-15, abs=0)


@pytest.mark.parametrize(("schedule", "overrides"), [("rex", {}), ("wsd", {"decay": 0.1, "decay_shape": "1-sqrt"}),
                                                     ({"shape": "cosine", "final": 0.1}, {"warmup": 0.05})])
def test_lambda_lr_adapter(schedule: Any, overrides: dict[str, Any]) -> None:
    spec = schedules.load(schedule) if isinstance(schedule, str) else schedule
    make = lambda o, T: schedules.lambda_lr(o, schedule, total_steps=T, **overrides)  # noqa: E731
    assert _torch_lrs(make, 99) == pytest.approx(schedules.values({**spec, **overrides}, 99), rel=1e-15, abs=0)


def test_lambda_lr_resolves_power_max_lr_from_the_optimizer() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.02)
    scheduler = schedules.lambda_lr(optimizer, "power", total_steps=1000, warmup=0.0)
    spec = {**schedules.load("power", peak_lr=0.02), "warmup": 0.0}
    assert spec["max_lr"] == 0.02
    assert scheduler.lr_lambdas[0](500) == schedules.build(spec, 1000)(500) < 1.0


def test_lambda_lr_bad_input_is_one_error() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ConfigError, match="unknown schedule 'nope'"):
        schedules.lambda_lr(optimizer, "nope", total_steps=10)
    with pytest.raises(ScheduleError, match="no parameter 'fnal'"):
        schedules.lambda_lr(optimizer, "cosine", total_steps=10, fnal=0.1)
    with pytest.raises(ScheduleError, match="name or a spec"):
        schedules.lambda_lr(optimizer, 3, total_steps=10)  # type: ignore[arg-type]


# ReduceLROnPlateau: torch's scheduler and Plateau driven by the same losses give the same LR after every evaluation.
# min_lr and eps are ratios of the peak here, absolute LRs in torch: both are scaled by the peak for torch.

plateau_params = st.fixed_dictionaries({
    "factor": st.floats(0.05, 0.9),
    "patience": st.integers(0, 4),
    "threshold": st.sampled_from([0.0, 1e-4, 0.05]),
    "threshold_mode": st.sampled_from(["rel", "abs"]),
    "cooldown": st.integers(0, 3),
    "min_lr": st.sampled_from([0.0, 1e-3, 0.05]),
    "eps": st.sampled_from([1e-8, 1e-3]),
})
# Plateaus, noise and repeats: a random walk of rounded losses, so equal and nearly equal values occur.
loss_walks = st.lists(st.sampled_from([-0.2, -0.01, 0.0, 0.0, 0.01, 0.3]), min_size=1, max_size=60).map(
    lambda steps: [round(2.0 + sum(steps[: i + 1]), 2) for i in range(len(steps))])


@settings(max_examples=50, deadline=None)
@given(params=plateau_params, losses=loss_walks, peak=st.sampled_from([1.0, 0.1, 3e-4]))
def test_plateau_matches_torch_reduce_lr_on_plateau(params: dict[str, Any], losses: list[float], peak: float) -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", **{**params, "min_lr": params["min_lr"] * peak, "eps": params["eps"] * peak})
    ours = schedules.build({"shape": "plateau", **params}, 1000)
    assert isinstance(ours, schedules.Plateau)
    for i, loss in enumerate(losses):
        theirs.step(loss)
        ours.observe(loss)
        assert peak * ours(10 * i) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9), i
    assert ours.best == theirs.best and ours.bad == theirs.num_bad_epochs and ours.cooling == theirs.cooldown_counter


def test_plateau_torch_defaults_and_state() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    ours = schedules.build({"shape": "plateau"}, 100)
    losses = [1.0] + [0.99999] * 11 + [0.5] + [0.5] * 11  # 1e-5 is below the 1e-4 relative threshold
    for loss in losses:
        theirs.step(loss)
        ours.observe(loss)
    assert optimizer.param_groups[0]["lr"] == ours(50) == pytest.approx(0.01)
    resumed = schedules.build({"shape": "plateau"}, 100)
    resumed.load_state_dict(ours.state_dict())
    for loss in [0.5, 0.4, 0.4]:
        ours.observe(loss)
        resumed.observe(loss)
        assert resumed.state_dict() == ours.state_dict()


def test_plateau_warmup_ramps_to_the_current_level() -> None:
    plateau = schedules.build({"shape": "plateau", "warmup": 0.1, "patience": 0}, 100)
    plateau.observe(1.0)
    plateau.observe(1.0)  # a bad evaluation past patience 0: x 0.1
    assert plateau(np.arange(12)).tolist() == pytest.approx([0.1 * t / 10 for t in range(10)] + [0.1, 0.1])


def test_plateau_in_lambda_lr_observes_through_the_lambda() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    scheduler = schedules.lambda_lr(optimizer, {"shape": "plateau", "patience": 0}, total_steps=10)
    scheduler.lr_lambdas[0].observe(1.0)
    scheduler.lr_lambdas[0].observe(2.0)
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


# ---------------------------------------------------------------------------------------------------
# Properties over random valid parameters and budgets.

EPS = 1e-12
unit = st.floats(0.0, 1.0)
common = {"warmup": st.floats(0.0, 0.5), "warmup_start": unit}
increasing = st.lists(st.floats(0.01, 0.99), max_size=4, unique=True).map(sorted)
decay_shape = st.sampled_from(["linear", "cosine", "1-sqrt", "square", "exp"])


def _spec(shape: str, **params: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"shape": st.just(shape), **common, **params})


def _points(draw: Any) -> list[list[float]]:
    inner = draw(st.lists(st.floats(0.01, 0.99), max_size=5, unique=True).map(sorted))
    xs = [0.0, *inner, 1.0]
    return [[x, draw(unit)] for x in xs]


DECREASING: dict[str, st.SearchStrategy[dict[str, Any]]] = {  # non-increasing after the warmup
    "constant": _spec("constant"),
    "linear": _spec("linear", final=unit),
    "cosine": _spec("cosine", final=unit),
    "rex": _spec("rex", final=unit),
    "rex_beta": _spec("rex_beta", beta=st.floats(0.0, 10.0), final=unit),
    "polynomial": _spec("polynomial", power=st.floats(0.1, 5.0), final=unit),
    "exponential": _spec("exponential", final=st.floats(1e-6, 1.0)),
    "step": _spec("step", milestones=increasing, gamma=st.floats(1e-3, 1.0)),
    "wsd": _spec("wsd", decay=st.floats(0.0, 0.5), decay_shape=decay_shape, final=st.floats(1e-6, 1.0)),
    "inverse_sqrt": _spec("inverse_sqrt", timescale=st.floats(0.0, 1.0)),
    "power": _spec("power", a=st.floats(0.01, 100.0), b=st.floats(-2.0, 0.0), tokens_per_step=st.floats(1.0, 1e4),
                   max_lr=st.floats(1e-4, 1.0), decay=st.floats(0.0, 0.4), decay_shape=decay_shape,
                   final=st.floats(1e-6, 1.0)),
    "infinite": st.floats(0.01, 1.0).flatmap(lambda c: _spec(
        "infinite", cooldown=st.floats(0.0, 0.3), decay=st.floats(0.0, 0.3), constant=st.just(c),
        final=st.floats(1e-3, 1.0).map(lambda r: r * c), timescale=st.floats(0.1, 100.0),
        cooldown_shape=st.sampled_from(["cosine", "linear", "inverse-sqrt"]))),
}
OTHERS: dict[str, st.SearchStrategy[dict[str, Any]]] = {  # bounded, not monotone
    "cyclic": _spec("cyclic", cycles=st.floats(0.1, 20.0), up=st.floats(0.01, 1.0), low=unit,
                    mode=st.sampled_from(["triangular", "triangular2"])),
    "cosine_restarts": _spec("cosine_restarts", period=st.floats(0.001, 1.0), mult=st.integers(1, 4), final=unit),
    "piecewise": st.composite(lambda draw: {"shape": "piecewise", "points": _points(draw),
                                            "warmup": draw(common["warmup"]), "warmup_start": draw(unit)})(),
    "formula": _spec("formula", formula=st.sampled_from(
        ["1 - z", "exp(-4 * z)", "min(1, 2 * (1 - z))", "clip(1.5 - z, 0, 1)", "(1 - z) ** 2 * (1 + sin(3 * z)) / 2",
         "where(z < 0.5, 1, 2 * (1 - z))", "sqrt(max(0, 1 - z))", "0.5 + 0.5 * cos(pi * z)"])),
    "join": _spec("join", pieces=st.sampled_from([
        [{"shape": "cosine", "final": 0.1, "until": 0.8}, {"shape": "constant", "scale": 0.1}],
        [{"shape": "constant", "until": 0.3}, {"shape": "rex", "until": 0.6, "final": 0.5},
         {"shape": "exponential", "final": 0.01, "scale": 0.5}],
        [{"shape": "cyclic", "until": 0.5}, {"shape": "join", "pieces": [{"shape": "linear"}]}],
    ])),
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
fast = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _in_unit_interval(multipliers: list[float]) -> bool:
    return all(math.isfinite(v) and -EPS <= v <= 1 + EPS for v in multipliers)


def _non_increasing(multipliers: list[float]) -> bool:
    return all(b <= a + EPS for a, b in zip(multipliers, multipliers[1:]))


def _non_decreasing(multipliers: list[float]) -> bool:
    return all(b >= a - EPS for a, b in zip(multipliers, multipliers[1:]))


def _fits(spec: dict[str, Any], total: int) -> bool:
    """Whether the spec's phases fit the budget (otherwise build raises: see test_bad_spec)."""
    lengths = [spec.get("warmup", 0.0), spec.get("decay", 0.0), spec.get("cooldown", 0.0)]
    steps = [schedules.to_steps(f, total) for f in lengths]
    return sum(lengths) <= 1 and steps[0] < total and sum(steps) <= total


@pytest.mark.parametrize("shape", sorted({**DECREASING, **OTHERS}))
@fast
@given(data=st.data(), total=budgets)
def test_warmup_then_shape_properties(shape: str, data: st.DataObject, total: int) -> None:
    spec = data.draw({**DECREASING, **OTHERS}[shape])
    assume(_fits(spec, total))
    warmup = schedules.to_steps(spec["warmup"], total)
    multipliers = schedules.values(spec, total)
    assert _in_unit_interval(multipliers)
    assert _non_decreasing(multipliers[:warmup])
    if shape in DECREASING:
        assert _non_increasing(multipliers[warmup:])
    if warmup:  # the ramp starts at warmup_start x g(0) and ends one step's slope below g(0): continuous
        top = multipliers[warmup]
        assert multipliers[0] == pytest.approx(spec["warmup_start"] * top, rel=1e-12, abs=1e-300)
        jump = top - multipliers[warmup - 1]
        assert -EPS <= jump <= (1 - spec["warmup_start"]) * top / warmup + EPS
    if shape == "cyclic":
        assert min(multipliers[warmup:]) >= spec["low"] * (1 - 1e-12) - EPS
    if shape == "cosine_restarts":  # non-increasing within each cycle: rises only at restarts, back to 1
        rises = [t for t in range(warmup + 1, total) if multipliers[t] > multipliers[t - 1] + EPS]
        assert all(multipliers[t] == pytest.approx(1.0) for t in rises)


def _boundaries(spec: dict[str, Any], total: int) -> list[int]:
    w = schedules.to_steps(spec.get("warmup", 0.0), total)
    d = schedules.to_steps(spec.get("decay", 0.0), total)
    if spec["shape"] == "infinite":
        c = schedules.to_steps(spec["cooldown"], total)
        return [w, w + c, total - d]
    return [w, total - d]


@pytest.mark.parametrize("shape", ["wsd", "infinite", "power"])
@fast
@given(data=st.data(), total=st.integers(200, 5000))
def test_continuous_at_joins(shape: str, data: st.DataObject, total: int) -> None:
    # No step across a phase boundary is larger than the steps beside it: the pieces meet.
    spec = data.draw(DECREASING[shape])
    if spec.get("decay_shape") == "1-sqrt":  # infinitely steep at its start: a discrete jump by design
        spec = {**spec, "decay_shape": "linear"}
    assume(_fits(spec, total))
    bounds = _boundaries(spec, total)
    assume(all(b - a >= 4 for a, b in zip([0, *bounds], [*bounds, total])))
    f = schedules.values(spec, total)
    for b in bounds:
        if 2 <= b <= total - 2:
            step = abs(f[b] - f[b - 1])
            assert step <= max(abs(f[b - 1] - f[b - 2]), abs(f[b + 1] - f[b])) * (1 + 1e-9) + 1e-12, b


@pytest.mark.parametrize("shape", ["linear", "rex", "step", "infinite", "cyclic", "formula"])
@fast
@given(data=st.data(), total=budgets, every=st.floats(0.0, 1.0))
def test_sample_every_holds_the_lr(shape: str, data: st.DataObject, total: int, every: float) -> None:
    spec = data.draw({**DECREASING, **OTHERS}[shape])
    assume(_fits(spec, total))
    k = max(1, schedules.to_steps(every, total))
    sampled = schedules.values({**spec, "sample_every": every}, total)
    plain = schedules.values(spec, total)
    assert sampled == [plain[k * (t // k)] for t in range(total)]


@fast
@given(spec=onecycle_spec, total=budgets)
def test_onecycle_properties(spec: dict[str, Any], total: int) -> None:
    multipliers = schedules.values(spec, total)
    peak = multipliers.index(max(multipliers))
    assert _in_unit_interval(multipliers)
    assert _non_decreasing(multipliers[: peak + 1])
    assert _non_increasing(multipliers[peak:])
    assert multipliers[-1] == pytest.approx(1 / spec["div_factor"] / spec["final_div_factor"], rel=1e-12)


@fast
@given(beta=st.floats(0.0, 10.0), final=unit, warmup=st.floats(0.0, 0.5), total=budgets)
def test_rex_beta_family(beta: float, final: float, warmup: float, total: int) -> None:
    assume(schedules.to_steps(warmup, total) < total)
    common_keys = {"final": final, "warmup": warmup}
    family = schedules.values({"shape": "rex_beta", "beta": beta, **common_keys}, total)
    formula = f"{final!r} + (1 - {final!r}) * (1 - z) / (1 - (1 - {beta!r}) * z)"
    assert family == pytest.approx(schedules.values({"shape": "formula", "formula": formula, "warmup": warmup}, total),
                                   rel=1e-12, abs=1e-15)
    if beta == 0.5:
        assert family == pytest.approx(schedules.values({"shape": "rex", **common_keys}, total), rel=1e-12)


def test_piecewise_file_forms(tmp_path: Path) -> None:
    (tmp_path / "values.txt").write_text("# a refined schedule\n1.0\n0.5\n\n0.0\n")
    (tmp_path / "points.csv").write_text("fraction,value\n0,1\n0.5,0.5  # a comment\n1,0\n")
    (tmp_path / "one.txt").write_text("0.25\n")
    linear = schedules.values({"shape": "linear"}, 50)
    for name in ("values.txt", "points.csv"):
        assert schedules.values({"shape": "piecewise", "file": str(tmp_path / name)}, 50) == pytest.approx(linear)
    assert schedules.values({"shape": "piecewise", "file": str(tmp_path / "one.txt")}, 3) == [0.25] * 3


# ---------------------------------------------------------------------------------------------------
# Shipped YAML files: every schedule of the issue, composed as the planner composes them.

EXPECTED_NAMES = {
    "constant", "linear", "cosine", "polynomial", "step", "multistep", "exponential", "onecycle", "rex", "rex_beta",
    "wsd", "inverse_sqrt", "power", "infinite", "cyclic", "cosine_restarts", "plateau", "piecewise", "formula",
    "cosine_inf", "rex_step", "rex_exponential", "rex_onecycle", "autolrs",
}


@pytest.fixture(scope="module")
def shipped() -> dict[str, dict[str, Any]]:
    with composer() as c:
        return {name: schedules.compose_spec(c, name, peak_lr=0.01) for name in c.options("schedule")}


def test_every_schedule_of_the_issue_ships_and_every_shape_has_a_yaml(shipped: dict[str, dict[str, Any]]) -> None:
    assert set(shipped) == EXPECTED_NAMES
    assert {spec["shape"] for spec in shipped.values()} == set(schedules.shapes())


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_shipped_yaml_lists_every_parameter_and_passes_check(shipped: dict[str, dict[str, Any]], name: str) -> None:
    spec = shipped[name]
    info = schedules.shapes()[spec["shape"]]
    assert set(spec) == {"shape", *schedules.LABEL_KEYS, *info.parameters}
    assert spec["description"] and spec["source"]
    # autolrs's authors' stages (tau = 1000 updates, 10 trials of 100) need a budget above 2000
    for total in (2001, 20_000) if name == "autolrs" else (1, 2, 7, 10, 100, 1000):
        schedules.check(spec, total, name)


def test_power_yaml_follows_the_peak_lr(shipped: dict[str, dict[str, Any]]) -> None:
    assert shipped["power"]["max_lr"] == 0.01
    assert "${optimizer.lr}" in (Path(__file__).resolve().parents[1] / "conf/schedule/power.yaml").read_text()


def test_every_shipped_schedule_checks_a_million_steps(shipped: dict[str, dict[str, Any]]) -> None:
    # Speed is measured in benchmarks/, not asserted on a shared machine; this checks the values at that size.
    for name, spec in shipped.items():
        multipliers = schedules.check(spec, 1_000_000, name)
        assert len(multipliers) == 1_000_000 and np.isfinite(multipliers).all(), name
        assert ((multipliers >= 0) & (multipliers <= 1)).all(), name


def test_shapes_registry() -> None:
    info = schedules.shapes()
    assert set(info) == {
        "constant", "linear", "cosine", "polynomial", "step", "exponential", "onecycle", "rex", "rex_beta", "wsd",
        "inverse_sqrt", "power", "infinite", "cyclic", "cosine_restarts", "piecewise", "formula", "join", "plateau",
        "autolrs",
    }
    assert info["wsd"].parameters == {
        "warmup": 0.0, "warmup_start": 0.0, "sample_every": 0.0, "decay": 0.2, "decay_shape": "linear", "final": 0.0,
    }
    assert "warmup" not in info["onecycle"].parameters and "sample_every" in info["onecycle"].parameters
    assert "sample_every" not in info["plateau"].parameters
    assert all(i.summary and "\n" not in i.summary for i in info.values())


# ---------------------------------------------------------------------------------------------------
# The commands (in process): list, show, plot.

runner = CliRunner()


def test_cli_list_shows_every_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI's console is made at import, so COLUMNS in invoke's env would not reach it: wide enough
    # that no name wraps, as a terminal of 300 columns would be.
    monkeypatch.setattr(cli.out, "width", 300)
    result = runner.invoke(app, ["schedules", "list"])
    assert result.exit_code == 0, result.output
    for name in EXPECTED_NAMES:
        assert name in result.output
    assert "${optimizer.lr}" in result.output


def test_cli_show_power_uses_the_peak_lr() -> None:
    result = runner.invoke(app, ["schedules", "show", "power", "--steps", "50", "--peak-lr", "0.02", "--csv"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "step,lr" and len(lines) == 51
    spec = schedules.load("power", peak_lr=0.02)
    assert [float(line.split(",")[1]) for line in lines[1:]] == [0.02 * v for v in schedules.values(spec, 50)]


def test_cli_plot_writes_one_png(tmp_path: Path) -> None:
    out = tmp_path / "lrs.png"
    result = runner.invoke(app, ["schedules", "plot", "rex", "cosine", "plateau", "--steps", "77", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "wrote" in result.output


@pytest.mark.parametrize(("args", "expected"), [
    (["schedules", "plot", "rex", "nope", "--out", "x.png"], "unknown schedule 'nope'"),
    (["schedules", "plot", "rex", "--out", "no/such/dir/x.png"], "cannot write the plot"),
    (["schedules", "show", "nope"], "unknown schedule 'nope'"),
])
def test_cli_schedule_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
                                    expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and expected in result.output and "Traceback" not in result.output


def test_cli_bad_formula_in_user_conf_is_one_message(tmp_path: Path) -> None:
    (tmp_path / "schedule").mkdir()
    (tmp_path / "schedule" / "evil.yaml").write_text('shape: formula\nformula: "__import__(\'os\').system(\'true\')"\n')
    result = runner.invoke(app, ["schedules", "show", "evil", "--config-dir", str(tmp_path)])
    assert result.exit_code == 2 and "attribute access ('.system')" in result.output and "'evil'" in result.output

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
    "sample_every above 1": ({"shape": "rex", "sample_every": 1.5}, 100, ["sample_every = 1.5", "[0, 1]"]),
    "polynomial power 0": ({"shape": "polynomial", "power": 0}, 100, ["power = 0.0", "> 0"]),
    "rex_beta negative": ({"shape": "rex_beta", "beta": -0.5}, 100, ["beta = -0.5", ">= 0", "0.5: the paper"]),
    "inverse_sqrt timescale": ({"shape": "inverse_sqrt", "timescale": -1}, 100, ["timescale = -1.0", ">= 0"]),
    "power b positive": ({"shape": "power", "b": 0.5}, 100, ["b = 0.5", "<= 0"]),
    "power max_lr unresolved": (
        {"shape": "power", "max_lr": "${optimizer.lr}"}, 100, ["max_lr = '${optimizer.lr}'", "finite number"],
    ),
    "power warmup + decay > 1": ({"shape": "power", "warmup": 0.5, "decay": 0.6}, 100, ["warmup + decay must be <= 1"]),
    "infinite final above constant": ({"shape": "infinite", "final": 0.2}, 100, ["final = 0.2", "constant = 0.1"]),
    "infinite phases > 1": (
        {"shape": "infinite", "warmup": 0.5, "cooldown": 0.3, "decay": 0.3}, 100,
        ["warmup = 0.5 plus cooldown = 0.3 plus decay = 0.3", "warmup + cooldown + decay must be <= 1"],
    ),
    "infinite phases > T in steps": (
        {"shape": "infinite", "warmup": 0.3, "cooldown": 0.3, "decay": 0.3}, 5,
        ["5 steps", "warmup rounds to 2 steps", "cooldown = 0.3 rounds to 2 steps", "decay = 0.3 rounds to 2 steps"],
    ),
    "infinite cooldown_shape": ({"shape": "infinite", "cooldown_shape": "sqrt"}, 100, ["'sqrt'", "inverse-sqrt"]),
    "cyclic mode": ({"shape": "cyclic", "mode": "exp_range"}, 100, ["mode = 'exp_range'", "triangular2"]),
    "cyclic cycles 0": ({"shape": "cyclic", "cycles": 0}, 100, ["cycles = 0.0", "> 0"]),
    "cyclic up 0": ({"shape": "cyclic", "up": 0}, 100, ["up = 0.0", "(0, 1]"]),
    "restarts mult float": ({"shape": "cosine_restarts", "mult": 1.5}, 100, ["mult = 1.5", "whole number"]),
    "restarts mult 0": ({"shape": "cosine_restarts", "mult": 0}, 100, ["mult = 0", ">= 1"]),
    "restarts period 0": ({"shape": "cosine_restarts", "period": 0}, 100, ["period = 0.0", "(0, 1]"]),
    "piecewise not from 0": ({"shape": "piecewise", "points": [[0.1, 1], [1, 0]]}, 100, ["from 0 to 1", "0.1"]),
    "piecewise decreasing fractions": (
        {"shape": "piecewise", "points": [[0, 1], [0.6, 0.5], [0.4, 0.2], [1, 0]]}, 100, ["increase strictly"],
    ),
    "piecewise value above 1": ({"shape": "piecewise", "points": [[0, 1.5], [1, 0]]}, 100, ["[0, 1]", "1.5"]),
    "piecewise one point": ({"shape": "piecewise", "points": [[0, 1]]}, 100, ["at least two [fraction, value]"]),
    "piecewise missing file": (
        {"shape": "piecewise", "file": "/no/such/file.csv"}, 100, ["cannot read file = '/no/such/file.csv'"],
    ),
    "join until not increasing": (
        {"shape": "join", "pieces": [{"shape": "constant", "until": 0.5}, {"shape": "linear", "until": 0.4},
                                     {"shape": "linear"}]},
        100, ["pieces[2].until = 0.4", "(0.5, 1)"],
    ),
    "join last has until": (
        {"shape": "join", "pieces": [{"shape": "constant", "until": 0.5}]}, 100, ["pieces[1].until = 0.5", "left out"],
    ),
    "join bad piece": (
        {"shape": "join", "pieces": [{"shape": "cosine", "until": 0.5, "fnal": 0}, {"shape": "linear"}]}, 100,
        ["'join', pieces[1]", "no parameter 'fnal'"],
    ),
    "join plateau piece": ({"shape": "join", "pieces": [{"shape": "plateau"}]}, 100, ["'plateau'", "piece of a join"]),
    "join scale": ({"shape": "join", "pieces": [{"shape": "linear", "scale": 2}]}, 100, ["scale = 2", "[0, 1]"]),
    "join pieces not a list": ({"shape": "join", "pieces": "linear"}, 100, ["pieces = 'linear'", "list"]),
    "plateau factor 1": ({"shape": "plateau", "factor": 1.0}, 100, ["factor = 1.0", "(0, 1)"]),
    "plateau patience negative": ({"shape": "plateau", "patience": -1}, 100, ["patience = -1", ">= 0"]),
    "plateau patience float": ({"shape": "plateau", "patience": 2.5}, 100, ["patience = 2.5", "whole number"]),
    "plateau threshold_mode": ({"shape": "plateau", "threshold_mode": "max"}, 100, ["'max'", "'rel' or 'abs'"]),
    "plateau sample_every": ({"shape": "plateau", "sample_every": 0.1}, 100, ["no parameter 'sample_every'"]),
    "formula syntax": ({"shape": "formula", "formula": "1 - "}, 100, ["'1 - '", "not a valid expression"]),
    "formula not a string": ({"shape": "formula", "formula": 3}, 100, ["formula = 3", "a string"]),
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
    monkeypatch.setattr(schedules, "build", lambda spec, total: lambda t: np.where(t >= 3, bad, 1.0))
    with pytest.raises(ScheduleError, match=r"'odd' at a budget of 10 steps .* at step 3 \(the first bad step\)"):
        schedules.check({"shape": "constant"}, 10, "odd")


@pytest.mark.parametrize(("text", "step"), [("z / (z - 0.5) + 1", 1), ("log(z)", 0), ("2 - z", 0), ("z - 0.25", 0),
                                            ("where(t < 1, 1, exp(1000 * z))", 1)])
def test_check_names_the_first_bad_step_of_a_formula(text: str, step: int) -> None:
    with pytest.raises(ScheduleError, match=rf"'mine' at a budget of 2 steps gives .* at step {step} "):
        schedules.check({"shape": "formula", "formula": text}, 2, "mine")


def test_check_of_a_large_budget_returns_every_multiplier() -> None:
    f = schedules.check({"shape": "wsd", "warmup": 0.05, "decay_shape": "1-sqrt"}, 100_000, "wsd")
    assert len(f) == 100_000 and f[0] == 0.0 and f[5_000] == 1.0 and f[79_999] == 1.0
    assert f[-1] == pytest.approx(1 - (19_999 / 20_000) ** 0.5)  # 1-sqrt cooldown over the last 20%: update T-1


def test_rex_baselines_follow_rex_section_4_1(shipped: dict[str, dict[str, Any]]) -> None:
    """REX §4.1: step x0.1 at 1/2 and 3/4; exp(-3 t/T); OneCycle a triangle 0.1 -> 1 at T/2 -> 0.1 (T = 100)."""
    at = (0, 1, 25, 49, 50, 74, 75, 99)
    step = schedules.values(shipped["rex_step"], 100)
    assert [step[t] for t in at] == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01], rel=1e-12)
    assert schedules.values(shipped["rex_exponential"], 100) == pytest.approx([math.exp(-3 * t / 100) for t in range(100)],
                                                                               rel=1e-12)
    cycle = schedules.values(shipped["rex_onecycle"], 100)
    # torch's phase ends: the peak at update 0.5 T - 1 = 49, the floor at T - 1 = 99
    assert [cycle[t] for t in at] == pytest.approx([0.1, 0.1 + 0.9 / 49, 0.1 + 0.9 * 25 / 49, 1, 1 - 0.9 / 50,
                                                   1 - 0.9 * 25 / 50, 1 - 0.9 * 26 / 50, 0.1], rel=1e-12)


def test_every_catalogue_entry_cites_a_checked_source_or_says_it_is_schedsweeps_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # None "from memory" or "unverified" (issue 25): each source names what was checked, a paper's section or
    # the code that holds the value, or says the value is schedsweep's own.
    monkeypatch.setattr(cli.out, "width", 2000)
    listed = runner.invoke(app, ["schedules", "list", "-v"])
    assert listed.exit_code == 0, listed.output
    for path in sorted((Path(schedules.__file__).parent.parent.parent / "conf" / "schedule").glob("*.yaml")):
        text = path.read_text().lower()
        for vague in ("unverified", "from memory", "remembered", "recollection"):
            assert vague not in text, f"{path.name} says {vague!r}"
        spec = yaml.safe_load(path.read_text())
        assert isinstance(spec.get("source"), str) and len(spec["source"]) > 10, f"{path.name} has no source"
        assert spec["source"][:40] in " ".join(listed.output.split()), f"schedules list -v does not show {path.name}'s source"
