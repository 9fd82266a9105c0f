"""Numbers as the report's tables show them: one precision per column, infinities and missing values spelled."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def decimals(values: pd.Series, digits: int = 4) -> int:
    """Decimal places that show the column's largest finite magnitude with `digits` significant digits: one
    precision for every number of the column (0.9970 beside 0.9986, never 0.997)."""
    finite = pd.to_numeric(values, errors="coerce").abs()
    finite = finite[finite.map(math.isfinite) & (finite > 0)]
    if finite.empty:
        return digits
    return max(0, digits - 1 - math.floor(math.log10(float(finite.max()))))


def num(value: Any, spec: str = ".4g") -> str:
    if pd.isna(value):
        return ""
    return format(value, spec) if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def ci(half: float) -> str:
    return "" if pd.isna(half) else f"±{half:.2g}"


def gap(gap: float, pct: float, places: int = 4) -> str:
    """How much worse than the winner, at the mean column's precision, and in %."""
    if pd.isna(gap) or not math.isfinite(gap):
        return num(gap)
    if gap == 0:
        return "0"
    return f"+{gap:.{places}f}" + ("" if pd.isna(pct) else f" ({pct:+.1f}%)")
