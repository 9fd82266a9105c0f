"""The catalogue of schedule shapes: one factory per shape, over a budget known in steps.

A shape factory is ``factory(total_steps, warmup_steps, **params) -> Piece``. It checks its parameters
(a :class:`ScheduleError` naming the shape, the key and what is allowed) and returns the piece that runs
after the warm-up: an array function of ``s = t - warmup_steps``, worth 1 at ``s = 0`` for every decay (the
warm-up ramps to that value). Its keyword defaults are the registry: they name the parameters a spec may
set with their types and defaults, and the first line of its docstring is its summary in
`schedsweep schedules list`.
:data:`FACTORIES` lists them by shape name. The one exception is ``plateau``, the class :class:`Plateau`,
driven by evaluation losses. Parsing specs, the warm-up ramp, sampling, checks and the step convention
are :mod:`schedsweep.schedules`' job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from schedsweep.errors import ScheduleError
from schedsweep.schedules.base import Piece, join, require, to_steps, unit
from schedsweep.schedules.autolrs import AutoLRS
from schedsweep.schedules.plateau import Plateau
from schedsweep.schedules.tabulated import formula, piecewise


_PROFILES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda z: 1.0 - z,
    "cosine": lambda z: (1.0 + np.cos(np.pi * z)) / 2.0,
    "rex": lambda z: (1.0 - z) / (1.0 - z / 2.0),
    "1-sqrt": lambda z: 1.0 - np.sqrt(z),
    "square": lambda z: 1.0 - z * z,
}
DECAY_SHAPES = ("linear", "cosine", "1-sqrt", "square", "exp")


def _anneal(profile: str, steps: int, final: float) -> Piece:
    """``final + (1 - final) * profile(s / steps)`` over ``steps`` updates; ``exp`` is ``final ** (s / steps)``."""
    if profile == "exp":
        return lambda s: np.power(final, s / steps)
    shape = _PROFILES[profile]
    return lambda s: final + (1.0 - final) * shape(s / steps)


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


def constant(total_steps: int, warmup_steps: int) -> Piece:
    """Constant: f = 1 (REX's "none" baseline; with warmup, HF's constant_with_warmup)."""
    return lambda s: np.ones_like(s)


def linear(total_steps: int, warmup_steps: int, *, final: float = 0.0) -> Piece:
    """Linear decay: f = final + (1 - final)(1 - z), torch LinearLR(1, final, T)."""
    unit("linear", "final", final)
    return _anneal("linear", total_steps - warmup_steps, final)


def cosine(total_steps: int, warmup_steps: int, *, final: float = 0.0) -> Piece:
    """Cosine decay: f = final + (1 - final)(1 + cos(pi z))/2, torch CosineAnnealingLR(T_max=T)."""
    unit("cosine", "final", final)
    return _anneal("cosine", total_steps - warmup_steps, final)


def polynomial(total_steps: int, warmup_steps: int, *, power: float = 2.0, final: float = 0.0) -> Piece:
    """Polynomial decay: f = final + (1 - final)(1 - z)^power, torch PolynomialLR(T, power), HF polynomial."""
    require(power > 0.0, "polynomial", "power", power, "> 0")
    unit("polynomial", "final", final)
    n = total_steps - warmup_steps
    return lambda s: final + (1.0 - final) * np.power(1.0 - s / n, power)


def rex(total_steps: int, warmup_steps: int, *, final: float = 0.0) -> Piece:
    """REX (paper form): f = final + (1 - final)(1 - z)/(1 - z/2)."""
    unit("rex", "final", final)
    return _anneal("rex", total_steps - warmup_steps, final)


def rex_beta(total_steps: int, warmup_steps: int, *, beta: float = 0.1, final: float = 0.0) -> Piece:
    """Generalised REX: f = final + (1 - final)(1 - z)/(1 - (1 - beta) z); beta 0.5 paper, 0.1 code, 1 linear."""
    require(0.0 <= beta <= 1e6, "rex_beta", "beta", beta, "a number >= 0 (0.5: the paper, 0.1: the code, 1: linear)")
    unit("rex_beta", "final", final)
    n = total_steps - warmup_steps
    return lambda s: final + (1.0 - final) * (1.0 - s / n) / (1.0 - (1.0 - beta) * (s / n))


def exponential(total_steps: int, warmup_steps: int, *, final: float = 0.01) -> Piece:
    """Exponential decay: f = final ** z, torch ExponentialLR(gamma = final ** (1/T))."""
    unit("exponential", "final", final, low_open=True)
    return _anneal("exp", total_steps - warmup_steps, final)


def step(
    total_steps: int, warmup_steps: int, *, milestones: Sequence[float] = (0.3, 0.6, 0.9), gamma: float = 0.1
) -> Piece:
    """Step decay: f = gamma ** (number of milestones m with z >= m), torch MultiStepLR."""
    marks = list(milestones)
    increasing = all(a < b for a, b in zip([0.0, *marks], [*marks, 1.0]))
    require(increasing, "step", "milestones", marks, "a strictly increasing list of fractions in (0, 1)")
    unit("step", "gamma", gamma, low_open=True)
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
    require(anneal in ("cos", "linear"), "onecycle", "anneal", anneal, "'cos' or 'linear'")
    if three_phase:  # past 0.5 the fall back to 1/div_factor would end after the budget
        require(0.0 < pct_start <= 0.5, "onecycle", "pct_start", pct_start, "in (0, 0.5] with three_phase")
    else:
        require(0.0 < pct_start < 1.0, "onecycle", "pct_start", pct_start, "in (0, 1)")
    require(div_factor >= 1.0, "onecycle", "div_factor", div_factor, ">= 1 (the start is peak / div_factor)")
    require(final_div_factor >= 1.0, "onecycle", "final_div_factor", final_div_factor, ">= 1")
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
    require(decay_shape in DECAY_SHAPES, shape, "decay_shape", decay_shape, "one of " + ", ".join(DECAY_SHAPES))
    unit(shape, "decay", decay)
    if decay_shape == "exp":
        require(0.0 < final <= 1.0, shape, "final", final, "in (0, 1] with decay_shape 'exp' (final ** x)")
    else:
        unit(shape, "final", final)
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
    require(timescale >= 0.0, "inverse_sqrt", "timescale", timescale, ">= 0 (0: the warmup length)")
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
    require(a > 0.0, "power", "a", a, "> 0")
    require(b <= 0.0, "power", "b", b, "<= 0 (the LR falls with tokens seen)")
    require(tokens_per_step > 0.0, "power", "tokens_per_step", tokens_per_step, "> 0")
    require(max_lr > 0.0, "power", "max_lr", max_lr, "> 0 (the peak LR, e.g. ${optimizer.lr})")
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
    require(cooldown_shape in kinds, name, "cooldown_shape", cooldown_shape, "one of " + ", ".join(kinds))
    require(timescale > 0.0, name, "timescale", timescale, "> 0")
    unit(name, "cooldown", cooldown)
    unit(name, "decay", decay)
    unit(name, "constant", constant, low_open=True)
    require(0.0 < final <= constant, name, "final", final, f"in (0, constant = {constant!r}] (c (final/c)^x)")
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
    require(mode in modes, "cyclic", "mode", mode, "one of " + ", ".join(modes))
    require(0.0 < cycles <= 1e6, "cyclic", "cycles", cycles, "> 0 (cycles per budget)")
    unit("cyclic", "up", up, low_open=True)
    unit("cyclic", "low", low)
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
    unit("cosine_restarts", "period", period, low_open=True)
    require(1 <= mult <= 1000, "cosine_restarts", "mult", mult, "a whole number >= 1")
    unit("cosine_restarts", "final", final)
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


FACTORIES: dict[str, Callable[..., Any]] = {
    f.__name__: f for f in (constant, linear, cosine, polynomial, step, exponential, onecycle, rex, rex_beta, wsd,
                            inverse_sqrt, power, infinite, cyclic, cosine_restarts, piecewise, formula)
} | {"plateau": Plateau, "autolrs": AutoLRS}
