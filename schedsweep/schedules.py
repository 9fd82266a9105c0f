"""Learning-rate schedules as pure functions of the step, in fractions of a known budget.

Step convention (the one place it is written down; tests pin it with a table of expected values):

* ``t`` is the index of the optimizer update, ``t = 0 .. T-1``; update ``t`` uses ``peak_lr * f(t)``.
  A schedule is defined on ``0 <= t < T`` only. Progress is ``z = t / T`` (the convention of PyTorch,
  Hugging Face and optax), so ``f(0) = 1`` and linear decay gives ``f(T-1) = 1/T``: zero is reached at
  ``t = T``, after the last update.
* Lengths in a spec are fractions of the budget, turned into steps by :func:`to_steps` only, so a 5%
  warmup is 5% at every budget.
* Every shape except ``onecycle`` takes ``warmup`` (fraction, default 0) and ``warmup_start``
  (multiplier at ``t = 0``, default 0). With ``W = to_steps(warmup, T)``:
  ``f(t) = warmup_start + (1 - warmup_start) * t / W`` for ``t < W`` (update 0 gets ``warmup_start``,
  as in HF and optax); afterwards the shape runs over the remaining ``T - W`` updates with its own
  progress ``z = (t - W) / (T - W)``.

Composite shapes are joined from simple ones with :func:`join`, as optax's ``join_schedules`` does.
A :data:`Schedule` is also a valid ``lr_lambda`` for torch's ``LambdaLR`` (it calls ``f(last_epoch)``
with ``last_epoch = t``), for users' own training loops.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schedsweep.errors import ScheduleError

Schedule = Callable[[int], float]
LABEL_KEYS = ("description", "source")
COMMON = {"warmup": 0.0, "warmup_start": 0.0}
_TOLERANCE = 1e-12  # float noise allowed around the bounds [0, 1] and warmup + decay <= 1

_PROFILES: dict[str, Callable[[float], float]] = {
    "linear": lambda z: 1.0 - z,
    "cosine": lambda z: (1.0 + math.cos(math.pi * z)) / 2.0,
    "rex": lambda z: (1.0 - z) / (1.0 - z / 2.0),
    "1-sqrt": lambda z: 1.0 - math.sqrt(z),
    "square": lambda z: 1.0 - z * z,
}
DECAY_SHAPES = ("linear", "cosine", "1-sqrt", "square", "exp")


@dataclass(frozen=True)
class ShapeInfo:
    """What `schedsweep schedules list` shows for one shape."""

    name: str
    parameters: dict[str, Any]  # name -> default, common keys included
    summary: str


def to_steps(fraction: float, total_steps: int) -> int:
    """Steps in ``fraction`` of a budget of ``total_steps``, rounded half up: ``int(fraction * T + 0.5)``."""
    return int(fraction * total_steps + 0.5)


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """``schedules[i]`` on ``boundaries[i-1] <= t < boundaries[i]``, fed ``t - boundaries[i-1]`` (optax)."""

    def joined(t: int) -> float:
        start = 0
        for schedule, boundary in zip(schedules, boundaries):
            if t < boundary:
                return schedule(t - start)
            start = boundary
        return schedules[-1](t - start)

    return joined


def _anneal(profile: str, steps: int, final: float) -> Schedule:
    """``final + (1 - final) * profile(s / steps)`` over ``steps`` updates; ``exp`` is ``final ** (s / steps)``."""
    if profile == "exp":
        return lambda s: final ** (s / steps)
    shape = _PROFILES[profile]
    return lambda s: final + (1.0 - final) * shape(s / steps)


def _require(ok: bool, shape: str, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ScheduleError(f"Schedule shape {shape!r}: {key} = {value!r} is not allowed; {key} must be {allowed}.")


# Shape factories: ``factory(total_steps, warmup_steps, **parameters)`` returns the schedule that runs
# after the warmup, fed ``s = t - warmup_steps``. The keyword defaults are the shape's registry entry.


def constant(total_steps: int, warmup_steps: int) -> Schedule:
    """Constant: f = 1 (REX's "none" baseline; with warmup, HF's constant_with_warmup)."""
    return lambda s: 1.0


def linear(total_steps: int, warmup_steps: int, *, final: float = 0.0) -> Schedule:
    """Linear decay: f = final + (1 - final)(1 - z), torch LinearLR(1, final, T)."""
    _require(0.0 <= final <= 1.0, "linear", "final", final, "in [0, 1]")
    return _anneal("linear", total_steps - warmup_steps, final)


def cosine(total_steps: int, warmup_steps: int, *, final: float = 0.0) -> Schedule:
    """Cosine decay: f = final + (1 - final)(1 + cos(pi z))/2, torch CosineAnnealingLR(T_max=T)."""
    _require(0.0 <= final <= 1.0, "cosine", "final", final, "in [0, 1]")
    return _anneal("cosine", total_steps - warmup_steps, final)


def rex(total_steps: int, warmup_steps: int, *, final: float = 0.0) -> Schedule:
    """REX (paper form): f = final + (1 - final)(1 - z)/(1 - z/2)."""
    _require(0.0 <= final <= 1.0, "rex", "final", final, "in [0, 1]")
    return _anneal("rex", total_steps - warmup_steps, final)


def exponential(total_steps: int, warmup_steps: int, *, final: float = 0.01) -> Schedule:
    """Exponential decay: f = final ** z, torch ExponentialLR(gamma = final ** (1/T))."""
    _require(0.0 < final <= 1.0, "exponential", "final", final, "in (0, 1] (final ** z needs final > 0)")
    return _anneal("exp", total_steps - warmup_steps, final)


def step(
    total_steps: int, warmup_steps: int, *, milestones: Sequence[float] = (0.3, 0.6, 0.9), gamma: float = 0.1
) -> Schedule:
    """Step decay: f = gamma ** (number of milestones m with z >= m), torch MultiStepLR."""
    marks = list(milestones)
    increasing = all(a < b for a, b in zip([0.0, *marks], [*marks, 1.0]))
    _require(increasing, "step", "milestones", marks, "a strictly increasing list of fractions in (0, 1)")
    _require(0.0 < gamma <= 1.0, "step", "gamma", gamma, "in (0, 1]")
    n = total_steps - warmup_steps
    # Milestones stay fractions compared with z = s/n: when the decimal m times n is a whole number k, k/n
    # rounds to the same double as m, so the drop lands on step k (0.7 * 10 is 7.000000000000001).
    return lambda s: gamma ** bisect.bisect_right(marks, s / n)


def onecycle(
    total_steps: int,
    warmup_steps: int,
    *,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal: str = "cos",
    three_phase: bool = False,
) -> Schedule:
    """One-cycle: torch OneCycleLR as a multiplier of max_lr, 1/div_factor -> 1 -> 1/(div_factor*final_div_factor).

    Phases end at update ``pct_start*T - 1`` (peak), [``2*pct_start*T - 2`` (back to 1/div_factor) if
    three_phase], and ``T - 1`` (minimum); within a phase ``pct = (t - start) / (end - start)``.
    """
    _require(anneal in ("cos", "linear"), "onecycle", "anneal", anneal, "'cos' or 'linear'")
    if three_phase:  # past 0.5 the fall back to 1/div_factor would end after the budget
        _require(0.0 < pct_start <= 0.5, "onecycle", "pct_start", pct_start, "in (0, 0.5] with three_phase")
    else:
        _require(0.0 < pct_start < 1.0, "onecycle", "pct_start", pct_start, "in (0, 1)")
    _require(div_factor >= 1.0, "onecycle", "div_factor", div_factor, ">= 1 (the start is peak / div_factor)")
    _require(final_div_factor >= 1.0, "onecycle", "final_div_factor", final_div_factor, ">= 1")
    initial = 1.0 / div_factor
    lowest = initial / final_div_factor
    T = total_steps
    # Float phase ends computed exactly as torch does, so the sequences agree to the last bit.
    if three_phase:
        phases = [(pct_start * T - 1, initial, 1.0), (2 * pct_start * T - 2, 1.0, initial),
                  (T - 1, initial, lowest)]
    else:
        phases = [(pct_start * T - 1, initial, 1.0), (T - 1, 1.0, lowest)]
    if anneal == "cos":
        interpolate = lambda a, b, pct: b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)  # noqa: E731
    else:
        interpolate = lambda a, b, pct: (b - a) * pct + a  # noqa: E731

    def one_cycle(t: int) -> float:
        start = 0.0
        for end, high, low in phases[:-1]:
            if t <= end:
                # torch divides 0 by 0 when pct_start * T == 1; a zero-length rise is already at its peak.
                return interpolate(high, low, (t - start) / (end - start) if end > start else 1.0)
            start = end
        end, high, low = phases[-1]
        return interpolate(high, low, (t - start) / (end - start))

    return one_cycle


def wsd(
    total_steps: int, warmup_steps: int, *, decay: float = 0.2, decay_shape: str = "linear", final: float = 0.0
) -> Schedule:
    """Warmup-stable-decay: f = 1, then the last D = decay*T updates decay with x = (t - (T - D))/D.

    decay_shape: linear final+(1-final)(1-x), cosine final+(1-final)(1+cos(pi x))/2, 1-sqrt
    final+(1-final)(1-sqrt x), square final+(1-final)(1-x^2), exp final**x (final > 0).
    """
    _require(decay_shape in DECAY_SHAPES, "wsd", "decay_shape", decay_shape, "one of " + ", ".join(DECAY_SHAPES))
    _require(0.0 <= decay <= 1.0, "wsd", "decay", decay, "in [0, 1]")
    if decay_shape == "exp":
        _require(0.0 < final <= 1.0, "wsd", "final", final, "in (0, 1] with decay_shape 'exp' (final ** x)")
    else:
        _require(0.0 <= final <= 1.0, "wsd", "final", final, "in [0, 1]")
    decay_steps = to_steps(decay, total_steps)
    stable = total_steps - warmup_steps - decay_steps
    if stable < 0:
        raise ScheduleError(
            f"Schedule shape 'wsd' at a budget of {total_steps} steps: warmup rounds to {warmup_steps} steps and "
            f"decay = {decay!r} to {decay_steps} steps, {warmup_steps + decay_steps} in all; warmup and decay "
            "steps must fit in the budget. Use a smaller warmup or decay, or a larger budget.")
    return join([constant(stable, 0), _anneal(decay_shape, decay_steps, final)], [stable])


_SHAPES: dict[str, Callable[..., Schedule]] = {
    f.__name__: f for f in (constant, linear, cosine, step, exponential, onecycle, rex, wsd)
}
_OWN_WARMUP = ("onecycle",)


def _parameters(shape: str) -> dict[str, Any]:
    own = dict(_SHAPES[shape].__kwdefaults__ or {})
    return own if shape in _OWN_WARMUP else {**COMMON, **own}


def shapes() -> dict[str, ShapeInfo]:
    """Every shape with its parameters (defaults) and the first line of its factory's docstring."""
    return {
        name: ShapeInfo(name, _parameters(name), (factory.__doc__ or "").strip().splitlines()[0])
        for name, factory in sorted(_SHAPES.items())
    }


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _coerce(shape: str, key: str, value: Any, default: Any) -> Any:
    """The value with the default's type, or ScheduleError: YAML gives 0 for 0.0 and lists for tuples."""
    if isinstance(default, bool):
        _require(isinstance(value, bool), shape, key, value, "true or false")
        return value
    if isinstance(default, float):
        _require(_is_real(value), shape, key, value, "a finite number")
        return float(value)
    if isinstance(default, tuple):
        ok = isinstance(value, Sequence) and not isinstance(value, str)
        _require(ok and all(_is_real(v) for v in value), shape, key, value, "a list of numbers")
        return tuple(float(v) for v in value)
    _require(isinstance(value, str), shape, key, value, "a string")
    return value


def build(spec: Mapping[str, Any], total_steps: int) -> Schedule:
    """The schedule ``f(t)``, ``0 <= t < total_steps``, of a composed schedule config (label keys ignored).

    Warmup joined to the shape: ``warmup_start + (1 - warmup_start) t/W`` for ``t < W``, then the shape.
    """
    if not isinstance(spec, Mapping):
        raise ScheduleError(f"A schedule config must be a mapping with a 'shape' key, not {spec!r}.")
    shape = spec.get("shape")
    if not isinstance(shape, str) or shape not in _SHAPES:
        raise ScheduleError(f"Unknown schedule shape {shape!r}. Set `shape:` in the schedule config to one of: "
                            f"{', '.join(sorted(_SHAPES))}.")
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ScheduleError(
            f"Schedule shape {shape!r}: the budget must be a whole number of steps >= 1, not {total_steps!r}.")
    allowed = _parameters(shape)
    given = {k: v for k, v in spec.items() if k != "shape" and k not in LABEL_KEYS}
    if shape in _OWN_WARMUP and "warmup" in given:
        # A sweep-wide `schedule.warmup=0` override stays valid here; any real warmup would be a second one.
        _require(given.pop("warmup") == 0, shape, "warmup", spec["warmup"],
                 "0: onecycle has its own warm-up from peak/div_factor over the first pct_start of the budget, "
                 "so set pct_start and div_factor instead")
    for key in given:
        if key not in allowed:
            listing = ", ".join(f"{k}={v!r}" for k, v in allowed.items())
            raise ScheduleError(
                f"Schedule shape {shape!r} has no parameter {key!r}. Its parameters (with defaults) are: {listing}.")
    params = {k: _coerce(shape, k, given[k], d) if k in given else d for k, d in allowed.items()}
    warmup = params.pop("warmup", 0.0)
    warmup_start = params.pop("warmup_start", 0.0)
    _require(0.0 <= warmup < 1.0, shape, "warmup", warmup, "a fraction of the budget in [0, 1)")
    _require(0.0 <= warmup_start <= 1.0, shape, "warmup_start", warmup_start, "in [0, 1]")
    if shape == "wsd" and warmup + params["decay"] > 1.0 + _TOLERANCE:
        raise ScheduleError(
            f"Schedule shape 'wsd': warmup = {warmup!r} plus decay = {params['decay']!r} exceeds the whole budget; "
            "warmup + decay must be <= 1.")
    warmup_steps = to_steps(warmup, total_steps)
    if 0 < warmup_steps >= total_steps:
        raise ScheduleError(
            f"Schedule shape {shape!r} at a budget of {total_steps} steps: warmup = {warmup!r} rounds to "
            f"{warmup_steps} steps, the whole budget, so the peak is never used; warmup must leave at least one "
            "step. Use a smaller warmup or a larger budget.")
    after = _SHAPES[shape](total_steps, warmup_steps, **params)
    if warmup_steps == 0:
        return after
    ramp = lambda t: warmup_start + (1.0 - warmup_start) * t / warmup_steps  # noqa: E731
    return join([ramp, after], [warmup_steps])


def values(spec: Mapping[str, Any], total_steps: int) -> list[float]:
    """``[f(t) for t in range(total_steps)]``: the multiplier of the peak LR for every update."""
    schedule = build(spec, total_steps)
    return [schedule(t) for t in range(total_steps)]


def check(spec: Mapping[str, Any], total_steps: int, name: str) -> None:
    """Build schedule ``name`` at budget ``total_steps`` and require every f(t) to be finite and in [0, 1]."""
    try:
        multipliers = values(spec, total_steps)
    except ScheduleError as error:
        raise ScheduleError(f"Schedule {name!r}: {error}") from None
    for t, value in enumerate(multipliers):
        if not (math.isfinite(value) and -_TOLERANCE <= value <= 1.0 + _TOLERANCE):
            raise ScheduleError(
                f"Schedule {name!r} at a budget of {total_steps} steps gives the LR multiplier {value!r} at step "
                f"{t} (the first bad step); every multiplier must be a finite number in [0, 1]. Check its parameters.")
