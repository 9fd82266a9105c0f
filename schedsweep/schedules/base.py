"""What every schedule shape shares: a Piece (steps -> multipliers), the peak bound, budget rounding,
joining pieces, and the checks whose messages name the shape, the key and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from schedsweep.errors import ScheduleError

Piece = Callable[[np.ndarray], np.ndarray]  # steps counted from the piece's own start -> multipliers
UPPER = 1.0  # the peak: no multiplier may exceed it


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


def is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def require(ok: bool, shape: str, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ScheduleError(f"Schedule shape {shape!r}: {key} = {value!r} is not allowed; {key} must be {allowed}.")


def unit(shape: str, key: str, value: float, low_open: bool = False) -> None:
    ok = 0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0
    require(ok, shape, key, value, "in (0, 1]" if low_open else "in [0, 1]")
