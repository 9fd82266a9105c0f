"""Learning-rate schedules as pure functions of the step, in fractions of a known budget.

Step convention (the one place it is written down; tests pin it with tables of expected values):

* ``t`` is the index of the optimizer update, ``t = 0 .. T-1``; update ``t`` uses ``peak_lr * f(t)``.
  A schedule is defined on ``0 <= t < T`` only. Progress is ``z = t / T`` (the convention of PyTorch,
  Hugging Face and optax), so ``f(0) = 1`` and linear decay gives ``f(T-1) = 1/T``: zero is reached at
  ``t = T``, after the last update.
* Lengths in a spec are fractions of the budget, turned into steps by :func:`to_steps` only, so a 5%
  warmup is 5% at every budget.
* Warmup (every shape but ``onecycle``): ``warmup`` (fraction, default 0) and ``warmup_start`` (ratio,
  default 0). A whole number ``warmup >= 1`` is a length in steps, the same at every budget (an LLM's
  warm-up; it keeps a WSD sweep's prefix shared across budgets). With ``W = to_steps(warmup, T)`` (or the
  steps given) and ``g`` the shape that follows,
  ``f(t) = g(0) * (warmup_start + (1 - warmup_start) * t / W)`` for ``t < W`` (update 0 gets
  ``warmup_start * g(0)``, as in HF and optax; ``g(0) = 1`` for every decay). Afterwards the shape runs
  over the remaining ``n = T - W`` updates with its own progress ``z = (t - W) / n``.
* Sampling rate (REX's second half of a schedule), every shape but ``plateau``: ``sample_every`` (a
  fraction of the budget, default 0 = every step) holds the LR for ``K = max(1, to_steps(sample_every, T))``
  updates: ``f_sampled(t) = f(K * floor(t / K))``, warm-up included.
* ``formula`` sees ``z`` (the progress above), ``t`` (the update index), ``T`` and ``W`` (steps); ``piecewise``
  points and ``join``'s ``until`` are fractions of that same progress z.
* Every multiplier must be finite and in ``[0, 1]`` at every step (:func:`check`, run at plan time).

The shapes themselves, one factory each, are in :mod:`schedsweep.schedules.shapes`; this module parses a spec,
adds the warm-up and sampling and checks the result. A :data:`Schedule` is vectorised: ``f(t)`` with an
int gives a float, with an array of steps an array (a million steps in tens of milliseconds). Composite
shapes are joined from simple pieces with :func:`join`, as optax's ``join_schedules`` does, never
subclassed. A Schedule is also a valid ``lr_lambda`` for torch's ``LambdaLR`` (:func:`lambda_lr`). The one
exception to "a pure function of the step" is ``plateau`` (:class:`Plateau`), driven by evaluation losses
through ``observe(loss)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schedsweep.errors import ScheduleError
from schedsweep.schedules.base import UPPER, Piece, is_real, join, require, to_steps, unit
from schedsweep.schedules.autolrs import AutoLRS
from schedsweep.schedules.plateau import Plateau
from schedsweep.schedules.shapes import FACTORIES

Schedule = Callable[[Any], Any]  # f(t): int -> float, array of steps -> float64 array
LABEL_KEYS = ("description", "source")
COMMON = {"warmup": 0.0, "warmup_start": 0.0}
SAMPLING = {"sample_every": 0.0}
WARMUP_ALLOWED = "a fraction of the budget in [0, 1) or a whole number of steps >= 1 (e.g. 50)"
_TOLERANCE = 1e-12  # float noise allowed around the bounds [0, 1] and sums of fractions <= 1


@dataclass(frozen=True)
class ShapeInfo:
    """What `schedsweep schedules list` shows for one shape."""

    name: str
    parameters: dict[str, Any]  # name -> default, common keys included
    summary: str


def _vectorised(piece: Piece) -> Schedule:
    def schedule(t: Any) -> Any:
        with np.errstate(all="ignore"):  # a bad value is reported by check() with its step, not as a warning
            if np.ndim(t) == 0:
                return float(piece(np.array([t], dtype=np.float64))[0])
            return piece(np.asarray(t, dtype=np.float64))

    return schedule


# The one shape made of specs: it compiles each piece with _pure, so it lives with the parser, not in
# schedsweep.schedules.shapes (which must not import this module).
def join_shape(total_steps: int, warmup_steps: int, *, pieces: Any = ({"shape": "constant"},)) -> Piece:
    """Join: schedule specs one after another, each up to `until` (a fraction of z) and times `scale`.

    Piece i runs over ``[until[i-1], until[i])`` of the post-warmup updates as a budget of its own (fed
    ``s - start``, its own z from 0) and is multiplied by ``scale`` (default 1); the last has no ``until``.
    """
    ok = isinstance(pieces, Sequence) and not isinstance(pieces, str) and len(pieces) >= 1
    require(ok and all(isinstance(p, Mapping) for p in pieces), "join", "pieces", pieces,
             "a list of one or more schedule specs (mappings with a 'shape' key)")
    n = total_steps - warmup_steps
    built: list[Piece] = []
    ends: list[int] = []
    previous = 0.0
    for i, piece in enumerate(pieces, 1):
        spec = dict(piece)
        last = i == len(pieces)
        until, scale = spec.pop("until", 1.0 if last else None), spec.pop("scale", 1.0)
        if last:
            require(until == 1.0, "join", f"pieces[{i}].until", until, "left out: the last piece runs to the end")
        else:
            require(is_real(until) and previous < until < 1.0, "join", f"pieces[{i}].until", until,
                     f"a fraction of the budget in ({previous!r}, 1): every piece but the last ends at a larger one")
            previous = until
        require(is_real(scale) and 0.0 <= scale <= UPPER, "join", f"pieces[{i}].scale", scale, "in [0, 1]")
        start, end = (ends[-1] if ends else 0), (n if last else to_steps(until, n))
        if end > start:  # a piece that rounds to no steps at this budget is never used
            try:
                inner = _pure(spec, end - start, nested=True)
            except ScheduleError as e:
                raise ScheduleError(f"Schedule shape 'join', pieces[{i}]: {e}") from None
            built.append(inner if scale == 1.0 else _scaled(inner, float(scale)))
        else:
            built.append(lambda s: np.ones_like(s))
        ends.append(end)
    return join(built, ends[:-1])


def _scaled(piece: Piece, scale: float) -> Piece:
    return lambda s: scale * piece(s)


_SHAPES: dict[str, Callable[..., Any]] = FACTORIES | {"join": join_shape}
_OWN_WARMUP = ("onecycle",)
_STATEFUL = ("plateau", "autolrs")  # LR set from the losses: never a pure function, never shares a prefix
_RAW = ("points", "pieces")  # validated by their factory, not by the type of their default
_LENGTHS = {"wsd": ("decay",), "power": ("decay",), "infinite": ("cooldown", "decay")}  # fractions of one budget


def _defaults(factory: Callable[..., Any]) -> dict[str, Any]:
    function = factory.__init__ if isinstance(factory, type) else factory  # type: ignore[misc]
    return dict(function.__kwdefaults__ or {})


def _parameters(shape: str) -> dict[str, Any]:
    own = _defaults(_SHAPES[shape])
    if shape in _OWN_WARMUP:
        return {**SAMPLING, **own}
    if shape == "autolrs":  # no warm-up: its search starts at update 0
        return own
    if shape in _STATEFUL:
        return {**COMMON, **own}
    return {**COMMON, **SAMPLING, **own}


def shapes() -> dict[str, ShapeInfo]:
    """Every shape with its parameters (defaults) and the first line of its factory's docstring."""
    return {
        name: ShapeInfo(name, _parameters(name), (factory.__doc__ or "").strip().splitlines()[0])
        for name, factory in sorted(_SHAPES.items())
    }


def _coerce(shape: str, key: str, value: Any, default: Any) -> Any:
    """The value with the default's type, or ScheduleError: YAML gives 0 for 0.0 and lists for tuples."""
    if key in _RAW:
        return value
    if key == "warmup":  # whole steps (STYLE.md principle 3), or a fraction of the budget
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        require(is_real(value) and 0.0 <= value < 1.0, shape, key, value, WARMUP_ALLOWED)
        return float(value)
    if isinstance(default, bool):
        require(isinstance(value, bool), shape, key, value, "true or false")
        return value
    if isinstance(default, int):
        require(isinstance(value, int) and not isinstance(value, bool), shape, key, value, "a whole number")
        return value
    if isinstance(default, float):
        require(is_real(value), shape, key, value, "a finite number")
        return float(value)
    if isinstance(default, tuple):
        ok = isinstance(value, Sequence) and not isinstance(value, str)
        require(ok and all(is_real(v) for v in value), shape, key, value, "a list of numbers")
        return tuple(float(v) for v in value)
    require(isinstance(value, str), shape, key, value, "a string")
    return value


def _parse(spec: Any, total_steps: Any) -> tuple[str, dict[str, Any]]:
    """(shape, every parameter with defaults filled and types checked) of a spec, label keys ignored."""
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
        require(given.pop("warmup") == 0, shape, "warmup", spec["warmup"],
                 "0: onecycle has its own warm-up from peak/div_factor over the first pct_start of the budget, "
                 "so set pct_start and div_factor instead")
    for key in given:
        if key not in allowed:
            listing = ", ".join(f"{k}={v!r}" for k, v in allowed.items())
            raise ScheduleError(
                f"Schedule shape {shape!r} has no parameter {key!r}. Its parameters (with defaults) are: {listing}.")
    return shape, {k: _coerce(shape, k, given[k], d) if k in given else d for k, d in allowed.items()}


def _warmup_steps(shape: str, warmup: float | int, warmup_start: float, total_steps: int) -> int:
    """W: an int >= 1 is steps, a float in [0, 1) a fraction of the budget (rounded half up)."""
    if isinstance(warmup, int):
        steps, given = warmup, f"warmup = {warmup!r} steps is"
    else:
        require(0.0 <= warmup < 1.0, shape, "warmup", warmup, WARMUP_ALLOWED)
        steps, given = to_steps(warmup, total_steps), f"warmup = {warmup!r} rounds to {to_steps(warmup, total_steps)} steps,"
    unit(shape, "warmup_start", warmup_start)
    if 0 < steps >= total_steps:
        raise ScheduleError(
            f"Schedule shape {shape!r} at a budget of {total_steps} steps: {given} the whole budget, so the "
            "peak is never used; warmup must leave at least one step. Use a smaller warmup or a larger budget.")
    return steps


def _pure(spec: Any, total_steps: Any, nested: bool = False) -> Piece:
    """The array function ``t -> f(t)`` of a pure (not stateful) spec: warmup, shape, sampling."""
    shape, params = _parse(spec, total_steps)
    if shape in _STATEFUL:
        where = "a piece of a join" if nested else "a pure schedule"
        raise ScheduleError(f"Schedule shape {shape!r} is driven by evaluation losses and cannot be {where}.")
    warmup = params.pop("warmup", 0.0)
    warmup_start = params.pop("warmup_start", 0.0)
    sample_every = params.pop("sample_every")
    unit(shape, "sample_every", sample_every)
    lengths = [k for k in _LENGTHS.get(shape, ()) if is_real(params[k])]
    fraction = 0.0 if isinstance(warmup, int) else warmup  # warm-up in steps: the shape's _fits checks it
    if fraction + sum(params[k] for k in lengths) > 1.0 + _TOLERANCE:
        parts = " plus ".join(f"{k} = {v!r}" for k, v in [("warmup", warmup), *((k, params[k]) for k in lengths)])
        raise ScheduleError(f"Schedule shape {shape!r}: {parts} exceeds the whole budget; "
                            f"{' + '.join(['warmup', *lengths])} must be <= 1.")
    warmup_steps = _warmup_steps(shape, warmup, warmup_start, total_steps)
    f = _SHAPES[shape](total_steps, warmup_steps, **params)
    if warmup_steps:
        after = f
        top = float(after(np.zeros(1))[0])  # the ramp ends where the shape starts: continuous at the join
        f = join([lambda t: top * (warmup_start + (1.0 - warmup_start) * t / warmup_steps), after], [warmup_steps])
    every = max(1, to_steps(sample_every, total_steps))
    if every > 1:
        held = f
        f = lambda t: held(every * np.floor(t / every))  # noqa: E731
    return f


def build(spec: Mapping[str, Any], total_steps: int) -> Any:
    """The schedule ``f(t)``, ``0 <= t < total_steps``, of a composed schedule config (label keys ignored).

    A vectorised :data:`Schedule` for every shape but ``plateau`` (a :class:`Plateau`) and ``autolrs`` (an
    :class:`AutoLRS`, a controller that runs trials through the loop: schedsweep.train.trials).
    Warmup joined to the shape: ``g(0) (warmup_start + (1 - warmup_start) t/W)`` for ``t < W``, then ``g``.
    """
    if isinstance(spec, Mapping) and spec.get("shape") in _STATEFUL:
        shape, params = _parse(spec, total_steps)
        warmup_start = params.pop("warmup_start", 0.0)
        warmup_steps = _warmup_steps(shape, params.pop("warmup", 0.0), warmup_start, total_steps)
        return _SHAPES[shape](total_steps, warmup_steps, warmup_start, **params)
    with np.errstate(all="ignore"):
        return _vectorised(_pure(spec, total_steps))


def stateful(f: Any) -> bool:
    """Whether a built schedule sets its LR from the losses it sees (plateau, autolrs): no fixed sequence."""
    return isinstance(f, (Plateau, AutoLRS))


def values(spec: Mapping[str, Any], total_steps: int) -> list[float]:
    """``[f(t) for t in range(total_steps)]``: the multiplier of the peak LR for every update (vectorised)."""
    return _array(build(spec, total_steps), total_steps).tolist()


def _array(schedule: Schedule, total_steps: int) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(schedule(np.arange(total_steps, dtype=np.float64)), dtype=np.float64)


def check(spec: Mapping[str, Any], total_steps: int, name: str) -> np.ndarray:
    """Build schedule ``name`` at budget ``total_steps``, require every f(t) to be finite and in [0, 1], return them.

    The ScheduleError names the schedule, the budget and the first bad step. ``plateau`` is checked before
    any evaluation (its parameters and warm-up).
    """
    try:
        multipliers = _array(build(spec, total_steps), total_steps)
    except ScheduleError as error:
        raise ScheduleError(f"Schedule {name!r}: {error}") from None
    bad = np.flatnonzero(~(np.isfinite(multipliers) & (multipliers >= -_TOLERANCE)
                           & (multipliers <= UPPER + _TOLERANCE)))
    if bad.size:
        t = int(bad[0])
        raise ScheduleError(
            f"Schedule {name!r} at a budget of {total_steps} steps gives the LR multiplier {float(multipliers[t])!r} "
            f"at step {t} (the first bad step); every multiplier must be a finite number in [0, 1]. Check its "
            "parameters.")
    return multipliers


def compose_spec(c: Any, name: str, peak_lr: float | None = None) -> dict[str, Any]:
    """Schedule ``name`` composed by an open :class:`schedsweep.plan.config.Composer`, interpolations resolved.

    ``peak_lr`` sets ``optimizer.lr`` first, for specs such as power's ``max_lr: ${optimizer.lr}``.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from schedsweep.plan.config import check_option, interpolated

    check_option(c, "schedule", name)
    overrides = [f"schedule={name}"] + ([f"optimizer.lr={float(peak_lr)!r}"] if peak_lr is not None else [])
    cfg, _ = c.compose(overrides, "config")
    if not interpolated(cfg["schedule"]):
        return cfg["schedule"]
    try:
        return OmegaConf.to_container(OmegaConf.create(cfg).schedule, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        raise ScheduleError(f"Schedule {name!r}: cannot resolve an interpolation: {str(e).splitlines()[0]}") from None


def load(name: str, *, peak_lr: float | None = None, config_dir: Path | None = None) -> dict[str, Any]:
    """The spec of schedule ``name`` from conf/schedule/ (and ``config_dir``, searched first)."""
    from schedsweep.plan.config import composer

    with composer(config_dir) as c:
        return compose_spec(c, name, peak_lr)


def lambda_lr(
    optimizer: Any, schedule: str | Mapping[str, Any], total_steps: int, *, config_dir: Path | None = None,
    **overrides: Any,
) -> Any:
    """``torch.optim.lr_scheduler.LambdaLR`` following a schedule (a name in conf/schedule/ or a spec) for T steps.

    ``overrides`` replace keys of the spec, e.g. ``lambda_lr(opt, "wsd", 10_000, decay=0.1)``. Step it once
    after each ``optimizer.step()``: update t then uses ``lr * f(t)``, the sweep's convention. For
    ``plateau``, call ``scheduler.lr_lambdas[0].observe(eval_loss)`` after each evaluation.
    """
    import torch

    if isinstance(schedule, str):
        spec, name = load(schedule, peak_lr=optimizer.param_groups[0]["lr"], config_dir=config_dir), schedule
    elif isinstance(schedule, Mapping):
        spec, name = dict(schedule), str(schedule.get("shape"))
    else:
        raise ScheduleError(f"lambda_lr() takes a schedule name or a spec mapping, not {schedule!r}.")
    spec = {**spec, **overrides}
    if spec.get("shape") == "autolrs":
        raise ScheduleError("Schedule 'autolrs' tries LRs and rewinds the model during training: it needs the "
                            "built-in loop's trials (schedsweep.train.trials), not a LambdaLR.")
    check(spec, total_steps, name)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, build(spec, total_steps))
