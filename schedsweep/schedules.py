"""Learning-rate schedules as pure functions of the step, in fractions of a known budget.

Step convention (the one place it is written down; tests pin it with tables of expected values):

* ``t`` is the index of the optimizer update, ``t = 0 .. T-1``; update ``t`` uses ``peak_lr * f(t)``.
  A schedule is defined on ``0 <= t < T`` only. Progress is ``z = t / T`` (the convention of PyTorch,
  Hugging Face and optax), so ``f(0) = 1`` and linear decay gives ``f(T-1) = 1/T``: zero is reached at
  ``t = T``, after the last update.
* Lengths in a spec are fractions of the budget, turned into steps by :func:`to_steps` only, so a 5%
  warmup is 5% at every budget.
* Warmup (every shape but ``onecycle``): ``warmup`` (fraction, default 0) and ``warmup_start`` (ratio,
  default 0). With ``W = to_steps(warmup, T)`` and ``g`` the shape that follows,
  ``f(t) = g(0) * (warmup_start + (1 - warmup_start) * t / W)`` for ``t < W`` (update 0 gets
  ``warmup_start * g(0)``, as in HF and optax; ``g(0) = 1`` for every decay). Afterwards the shape runs
  over the remaining ``n = T - W`` updates with its own progress ``z = (t - W) / n``.
* Sampling rate (REX's second half of a schedule), every shape but ``plateau``: ``sample_every`` (a
  fraction of the budget, default 0 = every step) holds the LR for ``K = max(1, to_steps(sample_every, T))``
  updates: ``f_sampled(t) = f(K * floor(t / K))``, warm-up included.
* ``formula`` sees ``z`` (the progress above), ``t`` (the update index), ``T`` and ``W`` (steps); ``piecewise``
  points and ``join``'s ``until`` are fractions of that same progress z.
* Every multiplier must be finite and in ``[0, 1]`` at every step (:func:`check`, run at plan time).

A :data:`Schedule` is vectorised: ``f(t)`` with an int gives a float, with an array of steps an array
(a million steps in tens of milliseconds). Composite shapes are joined from
simple pieces with :func:`join`, as optax's ``join_schedules`` does, never subclassed. A Schedule is also
a valid ``lr_lambda`` for torch's ``LambdaLR`` (:func:`lambda_lr`). The one exception to "a pure function
of the step" is ``plateau`` (:class:`Plateau`), driven by evaluation losses through ``observe(loss)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schedsweep import formula as formulas
from schedsweep.errors import ScheduleError

Schedule = Callable[[Any], Any]  # f(t): int -> float, array of steps -> float64 array
Piece = Callable[[np.ndarray], np.ndarray]  # steps counted from the piece's own start -> multipliers
LABEL_KEYS = ("description", "source")
COMMON = {"warmup": 0.0, "warmup_start": 0.0}
SAMPLING = {"sample_every": 0.0}
UPPER = 1.0  # the peak: no multiplier may exceed it
_TOLERANCE = 1e-12  # float noise allowed around the bounds [0, 1] and sums of fractions <= 1
FORMULA_VARIABLES = ("z", "t", "T", "W")

_PROFILES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda z: 1.0 - z,
    "cosine": lambda z: (1.0 + np.cos(np.pi * z)) / 2.0,
    "rex": lambda z: (1.0 - z) / (1.0 - z / 2.0),
    "1-sqrt": lambda z: 1.0 - np.sqrt(z),
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


def join(pieces: Sequence[Piece], boundaries: Sequence[int]) -> Piece:
    """``pieces[i]`` on ``boundaries[i-1] <= s < boundaries[i]``, fed ``s - boundaries[i-1]`` (optax)."""

    def joined(s: np.ndarray) -> np.ndarray:
        out = np.empty_like(s)
        starts = [-math.inf, *boundaries]
        ends = [*boundaries, math.inf]
        for i, (piece, start, end) in enumerate(zip(pieces, starts, ends)):
            mask = (s >= start) & (s < end) if i < len(pieces) - 1 else s >= start
            if mask.any():
                out[mask] = piece(s[mask] - (start if i else 0))
        return out

    return joined


def _vectorised(piece: Piece) -> Schedule:
    def schedule(t: Any) -> Any:
        with np.errstate(all="ignore"):  # a bad value is reported by check() with its step, not as a warning
            if np.ndim(t) == 0:
                return float(piece(np.array([t], dtype=np.float64))[0])
            return piece(np.asarray(t, dtype=np.float64))

    return schedule


def _anneal(profile: str, steps: int, final: float) -> Piece:
    """``final + (1 - final) * profile(s / steps)`` over ``steps`` updates; ``exp`` is ``final ** (s / steps)``."""
    if profile == "exp":
        return lambda s: np.power(final, s / steps)
    shape = _PROFILES[profile]
    return lambda s: final + (1.0 - final) * shape(s / steps)


def _require(ok: bool, shape: str, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ScheduleError(f"Schedule shape {shape!r}: {key} = {value!r} is not allowed; {key} must be {allowed}.")


def _unit(shape: str, key: str, value: float, low_open: bool = False) -> None:
    ok = 0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0
    _require(ok, shape, key, value, "in (0, 1]" if low_open else "in [0, 1]")


def _fits(shape: str, total_steps: int, parts: dict[str, tuple[float, int]]) -> int:
    """Steps left after the named parts (fraction, steps); ScheduleError when they overrun the budget."""
    left = total_steps - sum(steps for _, steps in parts.values())
    if left < 0:
        listing = ", ".join(f"{k}{'' if math.isnan(f) else f' = {f!r}'} rounds to {n} steps"
                            for k, (f, n) in parts.items())
        raise ScheduleError(
            f"Schedule shape {shape!r} at a budget of {total_steps} steps: {listing}, "
            f"{total_steps - left} in all; they must fit in the budget. Use smaller fractions or a larger budget.")
    return left


# Shape factories: ``factory(total_steps, warmup_steps, **parameters)`` returns the piece that runs after
# the warmup, fed ``s = t - warmup_steps``. The keyword defaults are the shape's registry entry and the
# first docstring line is its summary in `schedsweep schedules list`.


def constant(total_steps: int, warmup_steps: int) -> Piece:
    """Constant: f = 1 (REX's "none" baseline; with warmup, HF's constant_with_warmup)."""
    return lambda s: np.ones_like(s)


def linear(total_steps: int, warmup_steps: int, *, final: float = 0.0) -> Piece:
    """Linear decay: f = final + (1 - final)(1 - z), torch LinearLR(1, final, T)."""
    _unit("linear", "final", final)
    return _anneal("linear", total_steps - warmup_steps, final)


def cosine(total_steps: int, warmup_steps: int, *, final: float = 0.0) -> Piece:
    """Cosine decay: f = final + (1 - final)(1 + cos(pi z))/2, torch CosineAnnealingLR(T_max=T)."""
    _unit("cosine", "final", final)
    return _anneal("cosine", total_steps - warmup_steps, final)


def polynomial(total_steps: int, warmup_steps: int, *, power: float = 2.0, final: float = 0.0) -> Piece:
    """Polynomial decay: f = final + (1 - final)(1 - z)^power, torch PolynomialLR(T, power), HF polynomial."""
    _require(power > 0.0, "polynomial", "power", power, "> 0")
    _unit("polynomial", "final", final)
    n = total_steps - warmup_steps
    return lambda s: final + (1.0 - final) * np.power(1.0 - s / n, power)


def rex(total_steps: int, warmup_steps: int, *, final: float = 0.0) -> Piece:
    """REX (paper form): f = final + (1 - final)(1 - z)/(1 - z/2)."""
    _unit("rex", "final", final)
    return _anneal("rex", total_steps - warmup_steps, final)


def rex_beta(total_steps: int, warmup_steps: int, *, beta: float = 0.1, final: float = 0.0) -> Piece:
    """Generalised REX: f = final + (1 - final)(1 - z)/(1 - (1 - beta) z); beta 0.5 paper, 0.1 code, 1 linear."""
    _require(0.0 <= beta <= 1e6, "rex_beta", "beta", beta, "a number >= 0 (0.5: the paper, 0.1: the code, 1: linear)")
    _unit("rex_beta", "final", final)
    n = total_steps - warmup_steps
    return lambda s: final + (1.0 - final) * (1.0 - s / n) / (1.0 - (1.0 - beta) * (s / n))


def exponential(total_steps: int, warmup_steps: int, *, final: float = 0.01) -> Piece:
    """Exponential decay: f = final ** z, torch ExponentialLR(gamma = final ** (1/T))."""
    _unit("exponential", "final", final, low_open=True)
    return _anneal("exp", total_steps - warmup_steps, final)


def step(
    total_steps: int, warmup_steps: int, *, milestones: Sequence[float] = (0.3, 0.6, 0.9), gamma: float = 0.1
) -> Piece:
    """Step decay: f = gamma ** (number of milestones m with z >= m), torch MultiStepLR."""
    marks = list(milestones)
    increasing = all(a < b for a, b in zip([0.0, *marks], [*marks, 1.0]))
    _require(increasing, "step", "milestones", marks, "a strictly increasing list of fractions in (0, 1)")
    _unit("step", "gamma", gamma, low_open=True)
    n = total_steps - warmup_steps
    # Milestones stay fractions compared with z = s/n: when the decimal m times n is a whole number k, k/n
    # rounds to the same double as m, so the drop lands on step k (0.7 * 10 is 7.000000000000001).
    return lambda s: np.power(gamma, np.searchsorted(marks, s / n, side="right").astype(np.float64))


def onecycle(
    total_steps: int,
    warmup_steps: int,
    *,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal: str = "cos",
    three_phase: bool = False,
) -> Piece:
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
        phases = [(pct_start * T - 1, initial, 1.0), (2 * pct_start * T - 2, 1.0, initial), (T - 1, initial, lowest)]
    else:
        phases = [(pct_start * T - 1, initial, 1.0), (T - 1, 1.0, lowest)]

    def interpolate(a: float, b: float, pct: np.ndarray) -> np.ndarray:
        if anneal == "cos":
            return b + (a - b) / 2.0 * (np.cos(np.pi * pct) + 1)
        return (b - a) * pct + a

    def one_cycle(t: np.ndarray) -> np.ndarray:
        out = np.empty_like(t)
        done = np.zeros(t.shape, dtype=bool)
        start = 0.0
        for i, (end, high, low) in enumerate(phases):
            here = ~done if i == len(phases) - 1 else ~done & (t <= end)
            # torch divides 0 by 0 when pct_start * T == 1; a zero-length rise is already at its peak.
            pct = (t[here] - start) / (end - start) if end > start else np.ones(int(here.sum()))
            out[here] = interpolate(high, low, pct)
            done |= here
            start = end
        return out

    return one_cycle


def _decay_tail(shape: str, total_steps: int, warmup_steps: int, decay: float, decay_shape: str,
                final: float) -> tuple[int, int, Piece]:
    """(stable steps, decay steps, decay piece) of a warmup-stable-decay budget."""
    _require(decay_shape in DECAY_SHAPES, shape, "decay_shape", decay_shape, "one of " + ", ".join(DECAY_SHAPES))
    _unit(shape, "decay", decay)
    if decay_shape == "exp":
        _require(0.0 < final <= 1.0, shape, "final", final, "in (0, 1] with decay_shape 'exp' (final ** x)")
    else:
        _unit(shape, "final", final)
    decay_steps = to_steps(decay, total_steps)
    stable = _fits(shape, total_steps, {"warmup": (math.nan, warmup_steps), "decay": (decay, decay_steps)})
    return stable, decay_steps, _anneal(decay_shape, decay_steps, final)


def wsd(
    total_steps: int, warmup_steps: int, *, decay: float = 0.2, decay_shape: str = "linear", final: float = 0.0
) -> Piece:
    """Warmup-stable-decay: f = 1, then the last D = decay*T updates decay with x = (t - (T - D))/D.

    decay_shape: linear final+(1-final)(1-x), cosine final+(1-final)(1+cos(pi x))/2, 1-sqrt
    final+(1-final)(1-sqrt x), square final+(1-final)(1-x^2), exp final**x (final > 0).
    """
    stable, _, tail = _decay_tail("wsd", total_steps, warmup_steps, decay, decay_shape, final)
    return join([constant(stable, 0), tail], [stable])


def inverse_sqrt(total_steps: int, warmup_steps: int, *, timescale: float = 0.0) -> Piece:
    """Inverse square root: f = 1/sqrt((s + tau)/tau), s = t - W, tau = timescale*T or W (HF inverse_sqrt)."""
    _require(timescale >= 0.0, "inverse_sqrt", "timescale", timescale, ">= 0 (0: the warmup length)")
    # HF's default timescale is the warmup length (10,000 steps when there is none); budget-relative
    # here, so with neither it is one step: 1/sqrt(1 + s).
    tau = timescale * total_steps if timescale > 0 else float(max(warmup_steps, 1))
    return lambda s: 1.0 / np.sqrt((s + tau) / tau)


def power(
    total_steps: int,
    warmup_steps: int,
    *,
    a: float = 4.6,
    b: float = -0.51,
    tokens_per_step: float = 2048.0,
    max_lr: float = 0.003,
    decay: float = 0.0,
    decay_shape: str = "exp",
    final: float = 0.01,
) -> Piece:
    """Power scheduler: f = min(1, (a/max_lr) (t * tokens_per_step)^b), then an optional decay tail (IBM).

    ``max_lr`` must be the peak LR (conf/schedule/power.yaml sets ``max_lr: ${optimizer.lr}``). The warm-up
    ramps to the curve's value at its end, ``(t/W) min(1, (a/max_lr)(W c)^b)`` as dolomite-engine does. The
    last ``decay`` of the budget multiplies the curve's value where it starts by the wsd decay shape.
    """
    _require(a > 0.0, "power", "a", a, "> 0")
    _require(b <= 0.0, "power", "b", b, "<= 0 (the LR falls with tokens seen)")
    _require(tokens_per_step > 0.0, "power", "tokens_per_step", tokens_per_step, "> 0")
    _require(max_lr > 0.0, "power", "max_lr", max_lr, "> 0 (the peak LR, e.g. ${optimizer.lr})")
    stable, _, tail = _decay_tail("power", total_steps, warmup_steps, decay, decay_shape, final)
    scale = a / max_lr

    def curve(s: np.ndarray) -> np.ndarray:  # (0 tokens)^b = inf: capped at 1
        return np.minimum(1.0, scale * np.power((s + warmup_steps) * tokens_per_step, b))

    if decay == 0.0 or stable >= total_steps - warmup_steps:
        return curve
    top = float(curve(np.array([float(stable)]))[0])
    return join([curve, lambda s: top * tail(s)], [stable])


def infinite(
    total_steps: int,
    warmup_steps: int,
    *,
    cooldown: float = 0.1,
    cooldown_shape: str = "cosine",
    timescale: float = 10.0,
    constant: float = 0.1,
    decay: float = 0.2,
    final: float = 0.01,
) -> Piece:
    """Infinite: warmup, cooldown 1 -> constant, constant, then the last `decay` anneals exponentially to final.

    Cooldown over C steps, p = s/C: cosine ``c + (1-c)(1+cos(pi p))/2``, linear ``1 - (1-c) p``, inverse-sqrt
    ``1 + (c-1) h(p)/h(1)`` with ``h(x) = 1/sqrt(1 + timescale x) - 1``; anneal ``c (final/c)^x`` (Janson).
    """
    name = "infinite"
    kinds = ("cosine", "linear", "inverse-sqrt")
    _require(cooldown_shape in kinds, name, "cooldown_shape", cooldown_shape, "one of " + ", ".join(kinds))
    _require(timescale > 0.0, name, "timescale", timescale, "> 0")
    _unit(name, "cooldown", cooldown)
    _unit(name, "decay", decay)
    _unit(name, "constant", constant, low_open=True)
    _require(0.0 < final <= constant, name, "final", final, f"in (0, constant = {constant!r}] (c (final/c)^x)")
    cool, tail = to_steps(cooldown, total_steps), to_steps(decay, total_steps)
    hold = _fits(name, total_steps, {"warmup": (math.nan, warmup_steps), "cooldown": (cooldown, cool),
                                     "decay": (decay, tail)})
    c = constant
    if cooldown_shape == "cosine":
        cool_piece: Piece = lambda s: c + (1.0 - c) * (1.0 + np.cos(np.pi * s / cool)) / 2.0  # noqa: E731
    elif cooldown_shape == "linear":
        cool_piece = lambda s: 1.0 - (1.0 - c) * (s / cool)  # noqa: E731
    else:
        h = lambda x: 1.0 / np.sqrt(1.0 + timescale * x) - 1.0  # noqa: E731
        cool_piece = lambda s: 1.0 + (c - 1.0) * h(s / cool) / h(1.0)  # noqa: E731
    pieces = [cool_piece, lambda s: np.full_like(s, c), lambda s: c * np.power(final / c, s / tail)]
    return join(pieces, [cool, cool + hold])


def cyclic(
    total_steps: int, warmup_steps: int, *, cycles: float = 4.0, up: float = 0.5, low: float = 0.1,
    mode: str = "triangular",
) -> Piece:
    """Cyclic (CLR): `cycles` triangles from low up to 1 and back per budget, torch CyclicLR; triangular2 halves each.

    Cycle length L = n/cycles (n = T - W); rise over up*L steps, fall over (1 - up)*L; torch's
    ``x = 1 + s/L - floor(1 + s/L)``; triangular2 scales cycle k (from 1) by ``1/2^(k-1)``.
    """
    modes = ("triangular", "triangular2")
    _require(mode in modes, "cyclic", "mode", mode, "one of " + ", ".join(modes))
    _require(0.0 < cycles <= 1e6, "cyclic", "cycles", cycles, "> 0 (cycles per budget)")
    _unit("cyclic", "up", up, low_open=True)
    _unit("cyclic", "low", low)
    n = total_steps - warmup_steps
    up_size, down_size = up * (n / cycles), (1 - up) * (n / cycles)  # torch's step_size_up and _down
    total = up_size + down_size
    ratio = up_size / total

    def triangles(s: np.ndarray) -> np.ndarray:
        cycle = np.floor(1 + s / total)
        x = 1.0 + s / total - cycle
        with np.errstate(all="ignore"):  # up = 1 has no falling half: (x - 1)/0 is never selected
            factor = np.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        scale = 1.0 if mode == "triangular" else 1 / (2.0 ** (cycle - 1))
        return low + ((1.0 - low) * factor) * scale

    return triangles


def cosine_restarts(
    total_steps: int, warmup_steps: int, *, period: float = 0.25, mult: int = 1, final: float = 0.0
) -> Piece:
    """Cosine with warm restarts (SGDR): cycles of T_0 = period*T steps, each mult times longer.

    In cycle i (``T_i = T_0 mult^i`` steps, ``T_cur`` steps into it): ``final + (1 - final)(1 + cos(pi T_cur/T_i))/2``,
    torch CosineAnnealingWarmRestarts(T_0, T_mult=mult, eta_min=final).
    """
    _unit("cosine_restarts", "period", period, low_open=True)
    _require(1 <= mult <= 1000, "cosine_restarts", "mult", mult, "a whole number >= 1")
    _unit("cosine_restarts", "final", final)
    first = max(1, to_steps(period, total_steps))
    starts = [0]
    while mult > 1 and starts[-1] < total_steps:
        starts.append(starts[-1] + first * mult ** (len(starts) - 1))

    def restarts(s: np.ndarray) -> np.ndarray:
        if mult == 1:
            current, length = np.mod(s, first), float(first)
        else:
            i = np.searchsorted(starts, s, side="right") - 1
            current, length = s - np.asarray(starts, dtype=np.float64)[i], first * np.power(float(mult), i)
        return final + (1.0 - final) * (1.0 + np.cos(np.pi * current / length)) / 2.0

    return restarts


def piecewise(
    total_steps: int, warmup_steps: int, *, points: Any = ((0.0, 1.0), (1.0, 0.0)), file: str = ""
) -> Piece:
    """Tabulated: linear interpolation of [fraction, value] points (or a file of values over [0, 1]) at z.

    ``points`` run from fraction 0 to 1, strictly increasing; ``file`` names a text or CSV file (a path
    relative to the working directory) with one value per line, equally spaced over [0, 1], or
    ``fraction,value`` lines; ``#`` comments and one header line are skipped. A ``file`` replaces ``points``.
    """
    if file:
        xs, ys = _read_table(file)
    else:
        ok = isinstance(points, Sequence) and not isinstance(points, str) and len(points) >= 2 and all(
            isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2 and all(map(_is_real, p))
            for p in points)
        _require(ok, "piecewise", "points", points, "a list of at least two [fraction, value] pairs of numbers")
        xs, ys = (np.array([float(p[i]) for p in points]) for i in (0, 1))
    where = f"the file {file!r}" if file else "points"
    if not (xs[0] == 0.0 and xs[-1] == 1.0 and np.all(np.diff(xs) > 0)):
        raise ScheduleError(f"Schedule shape 'piecewise': the fractions of {where} must increase strictly from 0 "
                            f"to 1; got {xs[0]!r} ... {xs[-1]!r}.")
    if not np.all((ys >= 0.0) & (ys <= UPPER)):
        bad = float(ys[~((ys >= 0.0) & (ys <= UPPER))][0])
        raise ScheduleError(f"Schedule shape 'piecewise': the values of {where} must be in [0, 1]; got {bad!r}.")
    n = total_steps - warmup_steps
    return lambda s: np.interp(s / n, xs, ys)


def _read_table(file: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        lines = Path(file).expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ScheduleError(f"Schedule shape 'piecewise': cannot read file = {file!r} ({e.__class__.__name__}: "
                            f"{getattr(e, 'strerror', None) or e}).") from None
    rows: list[list[float]] = []
    header = False
    for number, line in enumerate(lines, 1):
        text = line.split("#")[0].strip()
        if not text:
            continue
        try:
            row = [float(x) for x in text.replace(",", " ").split()]
        except ValueError:
            if not rows and not header:  # the first line that is not numbers names the columns
                header = True
                continue
            raise ScheduleError(f"Schedule shape 'piecewise': line {number} of {file!r} is not numbers: "
                                f"{text[:60]!r}.") from None
        if len(row) not in (1, 2) or (rows and len(row) != len(rows[0])) or not all(map(math.isfinite, row)):
            raise ScheduleError(f"Schedule shape 'piecewise': line {number} of {file!r} must hold one value or "
                                f"'fraction,value' of finite numbers, like the lines before it; got {text[:60]!r}.")
        rows.append(row)
    if not rows:
        raise ScheduleError(f"Schedule shape 'piecewise': {file!r} holds no values.")
    table = np.array(rows)
    if table.shape[1] == 2:
        return table[:, 0], table[:, 1]
    values = table[:, 0] if len(table) > 1 else np.repeat(table[:, 0], 2)
    return np.linspace(0.0, 1.0, len(values)), values


def formula(total_steps: int, warmup_steps: int, *, formula: str = "1 - z") -> Piece:
    """Formula: f = a safe expression in z = (t - W)/(T - W), t, T and W, e.g. (1 - z)/(1 - 0.5*z) (see formula.py)."""
    compiled = formulas.parse(formula, FORMULA_VARIABLES)
    n, T, W = total_steps - warmup_steps, float(total_steps), float(warmup_steps)
    return lambda s: compiled(z=s / n, t=s + W, T=T, W=W)


def join_shape(total_steps: int, warmup_steps: int, *, pieces: Any = ({"shape": "constant"},)) -> Piece:
    """Join: schedule specs one after another, each up to `until` (a fraction of z) and times `scale`.

    Piece i runs over ``[until[i-1], until[i])`` of the post-warmup updates as a budget of its own (fed
    ``s - start``, its own z from 0) and is multiplied by ``scale`` (default 1); the last has no ``until``.
    """
    ok = isinstance(pieces, Sequence) and not isinstance(pieces, str) and len(pieces) >= 1
    _require(ok and all(isinstance(p, Mapping) for p in pieces), "join", "pieces", pieces,
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
            _require(until == 1.0, "join", f"pieces[{i}].until", until, "left out: the last piece runs to the end")
        else:
            _require(_is_real(until) and previous < until < 1.0, "join", f"pieces[{i}].until", until,
                     f"a fraction of the budget in ({previous!r}, 1): every piece but the last ends at a larger one")
            previous = until
        _require(_is_real(scale) and 0.0 <= scale <= UPPER, "join", f"pieces[{i}].scale", scale, "in [0, 1]")
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


class Plateau:
    """Reduce-on-plateau: x factor after more than `patience` evaluations without improvement (torch ReduceLROnPlateau).

    Stateful, so not a Schedule: ``observe(loss)`` after each evaluation, ``f(t)`` before each update.
    Mode 'min'. A loss improves when ``loss < best * (1 - threshold)`` (rel) or ``loss < best - threshold``
    (abs); otherwise it is a bad evaluation. After ``patience + 1`` bad evaluations in a row the level
    becomes ``max(level * factor, min_lr)`` unless that changes it by no more than ``eps``; then ``cooldown``
    evaluations in which bad ones are not counted. ``min_lr`` and ``eps`` are ratios of the peak LR (torch
    takes absolute LRs, so the two agree at peak 1 or with both scaled by the peak). A warm-up ramps to
    the current level. Before any evaluation, f is the warm-up then 1.
    """

    def __init__(
        self,
        total_steps: int,
        warmup_steps: int,
        warmup_start: float = 0.0,
        *,
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        name = "plateau"
        _require(0.0 < factor < 1.0, name, "factor", factor, "in (0, 1)")
        _require(patience >= 0, name, "patience", patience, "a whole number of evaluations >= 0")
        _require(threshold >= 0.0, name, "threshold", threshold, ">= 0")
        _require(threshold_mode in ("rel", "abs"), name, "threshold_mode", threshold_mode, "'rel' or 'abs'")
        _require(cooldown >= 0, name, "cooldown", cooldown, "a whole number of evaluations >= 0")
        _unit(name, "min_lr", min_lr)
        _require(eps >= 0.0, name, "eps", eps, ">= 0")
        self.warmup_steps, self.warmup_start = warmup_steps, warmup_start
        self.factor, self.patience, self.threshold, self.threshold_mode = factor, patience, threshold, threshold_mode
        self.cooldown, self.min_lr, self.eps = cooldown, min_lr, eps
        self.level, self.best, self.bad, self.cooling = 1.0, math.inf, 0, 0

    def observe(self, loss: float) -> None:
        """Record one evaluation loss (call after every evaluation); may lower the level for later steps."""
        loss = float(loss)
        better = loss < (self.best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                         else self.best - self.threshold)
        if better:
            self.best, self.bad = loss, 0
        else:
            self.bad += 1
        if self.cooling > 0:
            self.cooling -= 1
            self.bad = 0
        if self.bad > self.patience:
            lowered = max(self.level * self.factor, self.min_lr)
            if self.level - lowered > self.eps:
                self.level = lowered
            self.cooling, self.bad = self.cooldown, 0

    def __call__(self, t: Any) -> Any:
        steps = np.asarray(t, dtype=np.float64)
        if self.warmup_steps:
            ramp = self.warmup_start + (1.0 - self.warmup_start) * steps / self.warmup_steps
            values = self.level * np.where(steps < self.warmup_steps, ramp, 1.0)
        else:
            values = np.full_like(steps, self.level)
        return float(values) if np.ndim(t) == 0 else values

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep to resume: the level, the best loss and the counters."""
        return {"level": self.level, "best": self.best, "bad": self.bad, "cooling": self.cooling}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.level, self.best = float(state["level"]), float(state["best"])
        self.bad, self.cooling = int(state["bad"]), int(state["cooling"])


_SHAPES: dict[str, Callable[..., Any]] = {
    f.__name__: f for f in (constant, linear, cosine, polynomial, step, exponential, onecycle, rex, rex_beta, wsd,
                            inverse_sqrt, power, infinite, cyclic, cosine_restarts, piecewise, formula)
} | {"join": join_shape, "plateau": Plateau}
_OWN_WARMUP = ("onecycle",)
_STATEFUL = ("plateau",)
_RAW = ("points", "pieces")  # validated by their factory, not by the type of their default
_LENGTHS = {"wsd": ("decay",), "power": ("decay",), "infinite": ("cooldown", "decay")}  # fractions of one budget


def _defaults(factory: Callable[..., Any]) -> dict[str, Any]:
    function = factory.__init__ if isinstance(factory, type) else factory  # type: ignore[misc]
    return dict(function.__kwdefaults__ or {})


def _parameters(shape: str) -> dict[str, Any]:
    own = _defaults(_SHAPES[shape])
    if shape in _OWN_WARMUP:
        return {**SAMPLING, **own}
    if shape in _STATEFUL:
        return {**COMMON, **own}
    return {**COMMON, **SAMPLING, **own}


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
    if key in _RAW:
        return value
    if isinstance(default, bool):
        _require(isinstance(value, bool), shape, key, value, "true or false")
        return value
    if isinstance(default, int):
        _require(isinstance(value, int) and not isinstance(value, bool), shape, key, value, "a whole number")
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
        _require(given.pop("warmup") == 0, shape, "warmup", spec["warmup"],
                 "0: onecycle has its own warm-up from peak/div_factor over the first pct_start of the budget, "
                 "so set pct_start and div_factor instead")
    for key in given:
        if key not in allowed:
            listing = ", ".join(f"{k}={v!r}" for k, v in allowed.items())
            raise ScheduleError(
                f"Schedule shape {shape!r} has no parameter {key!r}. Its parameters (with defaults) are: {listing}.")
    return shape, {k: _coerce(shape, k, given[k], d) if k in given else d for k, d in allowed.items()}


def _warmup_steps(shape: str, warmup: float, warmup_start: float, total_steps: int) -> int:
    _require(0.0 <= warmup < 1.0, shape, "warmup", warmup, "a fraction of the budget in [0, 1)")
    _unit(shape, "warmup_start", warmup_start)
    steps = to_steps(warmup, total_steps)
    if 0 < steps >= total_steps:
        raise ScheduleError(
            f"Schedule shape {shape!r} at a budget of {total_steps} steps: warmup = {warmup!r} rounds to "
            f"{steps} steps, the whole budget, so the peak is never used; warmup must leave at least one "
            "step. Use a smaller warmup or a larger budget.")
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
    _unit(shape, "sample_every", sample_every)
    lengths = [k for k in _LENGTHS.get(shape, ()) if _is_real(params[k])]
    if warmup + sum(params[k] for k in lengths) > 1.0 + _TOLERANCE:
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

    A vectorised :data:`Schedule` for every shape but ``plateau``, which gives a :class:`Plateau`.
    Warmup joined to the shape: ``g(0) (warmup_start + (1 - warmup_start) t/W)`` for ``t < W``, then ``g``.
    """
    if isinstance(spec, Mapping) and spec.get("shape") in _STATEFUL:
        shape, params = _parse(spec, total_steps)
        warmup_start = params.pop("warmup_start")
        warmup_steps = _warmup_steps(shape, params.pop("warmup"), warmup_start, total_steps)
        return Plateau(total_steps, warmup_steps, warmup_start, **params)
    with np.errstate(all="ignore"):
        return _vectorised(_pure(spec, total_steps))


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
    """Schedule ``name`` composed by an open :class:`schedsweep.config.Composer`, interpolations resolved.

    ``peak_lr`` sets ``optimizer.lr`` first, for specs such as power's ``max_lr: ${optimizer.lr}``.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from schedsweep.config import check_option, interpolated

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
    from schedsweep.config import composer

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
    check(spec, total_steps, name)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, build(spec, total_steps))
