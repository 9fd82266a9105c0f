"""Shapes the user writes down: a table of points or a file of values (piecewise), or a safe formula."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from schedsweep.errors import ScheduleError
from schedsweep.schedules import formula as formulas
from schedsweep.schedules.base import UPPER, Piece, is_real, require

FORMULA_VARIABLES = ("z", "t", "T", "W")
POINTS = 201  # points a written piecewise schedule keeps: enough for a smooth curve, short enough to read


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
            isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2 and all(map(is_real, p))
            for p in points)
        require(ok, "piecewise", "points", points, "a list of at least two [fraction, value] pairs of numbers")
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


def piecewise_spec(fractions: Sequence[float], values: Sequence[float], *, description: str, source: str,
                   points: int = POINTS) -> dict[str, Any]:
    """A `piecewise` schedule spec from a curve sampled at `fractions` of the budget (the one writer of
    schedule YAML: refinement, predict's optimiser and the refinement study all write through it).

    At most `points` samples are kept (evenly by index, the first and last always); the first fraction
    becomes 0 and, when the last is below 1, the last value is held to fraction 1 (z = 1 is reached only
    between the last update and the end of the budget, so holding it changes no update at this budget)."""
    fractions, values = np.asarray(fractions, dtype=float), np.asarray(values, dtype=float)
    idx = np.unique(np.linspace(0, len(values) - 1, points).round().astype(int))
    pts = [[round(float(fractions[i]), 6), round(float(values[i]), 6)] for i in idx]
    pts[0][0] = 0.0
    if pts[-1][0] < 1.0:
        pts.append([1.0, pts[-1][1]])
    # warmup listed at its default, as in every conf/schedule file, so a sweep (or a study's per_task) can set it
    return {"shape": "piecewise", "description": description, "source": source, "warmup": 0.0, "warmup_start": 0.0,
            "points": pts}


def write_spec(path: Path, spec: dict[str, Any]) -> None:
    """A schedule spec as conf/schedule YAML, written atomically."""
    import yaml

    from schedsweep import files

    files.write_text(path, yaml.safe_dump(spec, sort_keys=False, default_flow_style=None))
