"""The LR-pruning rules replayed by benchmarks/pruning.py (schedsweep.results.pruning)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedsweep.results import pruning

LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def test_the_issue_rule_keeps_a_third_at_least_two_and_the_best_s_neighbours() -> None:
    means = dict(zip(LRS, (5.0, 2.0, 1.0, 1.5, math.inf)))
    assert pruning.kept(means, 3, pruning.RULE_NEIGHBOURS) == [3e-3, 1e-2, 3e-2]
    assert pruning.kept(means, 3, pruning.RULE_TOP) == [1e-2, 3e-2]
    assert pruning.kept(means, 3, pruning.RULE_PAIR) == [1e-2, 3e-2]
    assert pruning.kept(means, 3, pruning.RULE_HALVE) == [1e-2, 3e-2]
    assert pruning.kept({1e-2: 1.0, 3e-2: 1.5}, 3, pruning.RULE_HALVE) == [1e-2]
    # A diverged LR ranks last; at the edge the best has one neighbour.
    assert pruning.kept(dict(zip(LRS, (1.0, 2.0, 3.0, 4.0, math.inf))), 3, pruning.RULE_NEIGHBOURS) == [1e-3, 3e-3]


def test_replay_walks_the_rungs_with_the_survivors() -> None:
    rows = [{"group": "g", "steps": steps, "lr": lr, "mean": (math.log10(lr) + 2.2) ** 2 + steps / 1000}
            for steps in (10, 50, 100) for lr in LRS]
    trained = pruning.replay(pd.DataFrame(rows), 3, pruning.RULE_HALVE)
    assert {lr for g, s, lr in trained if s == 10} == set(LRS)
    assert {lr for g, s, lr in trained if s == 50} == {1e-2, 3e-3}  # ceil(5/3) = 2: the best two
    assert {lr for g, s, lr in trained if s == 100} == {1e-2}


def test_the_benchmark_replays_a_finished_sweep(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import importlib.util
    from pathlib import Path

    from test_report import Run
    from test_statistics import sweep_of

    spec = importlib.util.spec_from_file_location("pruning_bench", Path(__file__).parents[1] / "benchmarks" / "pruning.py")
    bench = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    # The best LR is 1e-2 at every budget, cosine beats linear everywhere: every rule finds both.
    runs = [Run(s, budget, (math.log10(lr) + 2.2) ** 2 + (0.0 if s == "cosine" else 0.5), lr=lr, seed=seed)
            for s in ("cosine", "linear") for budget in (0.1, 0.5, 1.0) for lr in LRS for seed in (0, 1)]
    sweep = sweep_of(tmp_path, runs)
    frame, metric = bench.load(sweep)
    for rule in pruning.RULES:
        table = bench.compare(frame, metric, 3, rule)
        assert table["same_winner"].all() and table["lr_ok"].all() and (table["regret_pct"] == 0).all()
    halve = bench.compare(frame, metric, 3, pruning.RULE_HALVE)
    assert halve["steps"].sum() / halve["full_steps"].sum() == (5 * 0.1 + 2 * 0.5 + 1 * 1.0) / (5 * 1.6)
    assert "winner in the full best group 100%" in bench.summary(halve)


def test_the_extrapolated_rules_rank_on_the_next_rung_s_power_law() -> None:
    assert pruning.extrapolated([(10, 4.0), (100, 2.0)], 1000) == pytest.approx(1.0)
    assert pruning.extrapolated([(10, 2.0), (100, 3.0)], 1000) == 3.0  # never worse with more steps
    assert pruning.extrapolated([(100, 3.0)], 1000) == 3.0
    # A low LR, worse now but improving faster, is the one that goes on; the first rung keeps every LR.
    history = {1e-3: [(10, 2.0), (100, 1.0)], 1e-2: [(10, 1.5), (100, 0.9)], 1e-1: [(10, 1.4), (100, 1.3)]}
    assert pruning.kept_next(history, 3, pruning.RULE_EXTRAP_HALVE, 1, 1000) == [1e-3]
    assert pruning.kept_next(history, 3, pruning.RULE_EXTRAP, 1, 1000) == [1e-3, 1e-2]
    assert pruning.kept_next({lr: h[:1] for lr, h in history.items()}, 3, pruning.RULE_EXTRAP, 0, 100) == sorted(history)
    assert pruning.kept_next(history, 3, pruning.RULE_HALVE, 1, 1000) == [1e-2]  # the plain rule ranks on the last mean


@given(n=st.integers(1, 9), rungs=st.integers(1, 5), eta=st.integers(2, 4), rule=st.sampled_from(pruning.RULES),
       seed=st.integers(0, 2**16))
@settings(max_examples=150, deadline=None)
def test_the_dry_run_s_promise_bounds_what_any_results_make_a_rule_keep(n: int, rungs: int, eta: int, rule: str,
                                                                         seed: int) -> None:
    rng = np.random.default_rng(seed)
    lrs = [10.0 ** (-k / 2) for k in range(n)]
    rows = [{"group": "g", "steps": 10 * 2**r, "lr": lr, "mean": float(rng.choice([rng.normal(), np.inf], p=[0.9, 0.1]))}
            for r in range(rungs) for lr in lrs]
    trained = pruning.replay(pd.DataFrame(rows), eta, rule)
    per_rung = [len({lr for _, s, lr in trained if s == 10 * 2**r}) for r in range(rungs)]
    promise = pruning.most_kept(n, rungs, eta, rule)
    assert all(got <= most for got, most in zip(per_rung, promise)), (per_rung, promise)
    if rule in (pruning.RULE_HALVE, pruning.RULE_TOP, pruning.RULE_PAIR):  # these keep a fixed number: exact
        assert per_rung == promise
