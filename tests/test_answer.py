"""The report states its answer first: per setting and budget the winner, who is statistically tied with it,
and what the data cannot tell (one seed; how many seeds would separate the top two)."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from schedsweep.cli import app
from schedsweep.results.answer import seeds_to_separate

from helpers import Run, make_sweep


def answer_lines(sweep: Path) -> list[str]:
    out = CliRunner().invoke(app, ["report", str(sweep)], env={"COLUMNS": "400"}).output
    head, _, rest = out.partition("\n\n")
    assert head.startswith("The answer"), out[:200]  # before any table
    return [line.strip() for line in head.splitlines()[1:]]


def test_one_seed_says_it_cannot_tell_and_names_the_gap(tmp_path: Path) -> None:
    runs = [Run(s, b, loss + b) for b in (0.1, 1.0) for s, loss in (("linear", 1.0), ("cosine", 1.02))]
    lines = answer_lines(make_sweep(tmp_path, runs))
    assert lines[0] == ("charlm · adamw, budget 10% (100 steps): linear wins (1.1); cosine is 1.8% behind, but with one "
                        "seed there is no spread to test it against: run more seeds (e.g. 'seed=range(3)') to tell them apart.")
    assert len(lines) == 2 and lines[1].startswith("charlm · adamw, budget 100% (1000 steps): linear wins (2)")


def test_seeds_name_the_tied_schedules_and_how_many_seeds_would_separate_them(tmp_path: Path) -> None:
    # linear 1.00/1.10/1.20 (mean 1.1, std 0.1); cosine 1.02/1.12/1.22 (1.12): paired, a constant +0.02 per seed, so
    # the paired test separates them; rex far behind. wsd 1.05/1.25/1.15 (1.15, std 0.1): tied with linear.
    values = {"linear": (1.0, 1.1, 1.2), "cosine": (1.02, 1.12, 1.22), "wsd": (1.05, 1.25, 1.15), "rex": (2.0, 2.1, 2.2)}
    runs = [Run(s, 1.0, v, seed=seed) for s, vs in values.items() for seed, v in enumerate(vs)]
    (line,) = answer_lines(make_sweep(tmp_path, runs))
    assert line.startswith("charlm · adamw, budget 100% (1000 steps): linear wins (1.1); statistically tied with it: wsd (p ")
    assert "cosine" not in line and "rex" not in line  # both significantly worse: not in the best group
    need = seeds_to_separate(0.05, 0.1, 0.1)
    assert f"about {need} seeds would separate linear from wsd at the observed spread." in line and need == 50


@given(st.floats(1e-3, 10), st.floats(1e-3, 10), st.floats(1e-3, 10))
def test_more_spread_or_a_smaller_gap_needs_more_seeds(gap: float, a: float, b: float) -> None:
    n = seeds_to_separate(gap, a, b)
    assert n is not None and n >= 2
    assert seeds_to_separate(gap / 2, a, b) >= n and seeds_to_separate(gap, 2 * a, 2 * b) >= n
    exact = ((1.6449 + 0.8416) * math.hypot(a, b) / gap) ** 2
    assert n == max(2, math.ceil(exact))
    assert seeds_to_separate(0.0, a, b) is None and seeds_to_separate(gap, 0.0, 0.0) is None
