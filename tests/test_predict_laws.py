"""The laws' formulas, the compressed double sum, fitting on curves the law generated, and bad curves."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from schedsweep.predict import Curve, PredictError, fit, fitting
from schedsweep.predict.laws import Events, Law, evaluate
from schedsweep.predict.optimize import optimize

MPL = {"L0": 2.0, "A": 0.5, "alpha": 0.5, "B": 0.3, "C": 0.5, "beta": 0.6, "gamma": 0.6}
TISSUE = {"L0": 2.0, "A": 0.5, "alpha": 0.5, "C": 1e-3, "lam": 0.99}


def naive_mpl(p: dict, lr: np.ndarray, t: int) -> float:
    """The Multi-Power Law written as the paper states it, one step at a time."""
    s1 = lr[: t + 1].sum()
    eta = np.concatenate([[lr.max()], lr])  # eta[k + 1] = lr[k]: the run starts from its peak, a warm-up rises back
    ld = sum((eta[k] - eta[k + 1]) * (1 - (p["C"] * lr[k] ** -p["gamma"] * lr[k : t + 1].sum() + 1) ** -p["beta"])
             for k in range(0, t + 1))
    return p["L0"] + p["A"] * s1 ** -p["alpha"] - p["B"] * ld


def naive_tissue(p: dict, lr: np.ndarray, t: int) -> float:
    m, s2 = 0.0, 0.0
    for i in range(1, t + 1):
        m = p["lam"] * m + (lr[i - 1] - lr[i] if i > np.argmax(lr) else 0.0)
        s2 += m
    return p["L0"] + p["A"] * lr[: t + 1].sum() ** -p["alpha"] - p["C"] * s2


def cosine(steps: int, warmup: int = 0, final: float = 0.1) -> np.ndarray:
    t = np.arange(steps - warmup)
    return np.concatenate([np.linspace(0.1, 1, warmup), final + (1 - final) * 0.5 * (1 + np.cos(np.pi * t / len(t)))])


def step_decay(steps: int, at: float = 0.6, to: float = 0.3) -> np.ndarray:
    return np.where(np.arange(steps) < at * steps, 1.0, to)


@given(st.lists(st.floats(0.01, 1.0), min_size=2, max_size=60), st.integers(0, 59))
@settings(max_examples=60, deadline=None)
def test_the_vectorised_sums_equal_the_laws_written_step_by_step(lrs, t):
    lr = np.array(lrs)
    t = min(t, len(lr) - 1)
    for kind, p, naive in (("mpl", MPL, naive_mpl), ("tissue", TISSUE, naive_tissue)):
        got = Law(kind, p, 1.0).predict(lr, np.array([t]))[0]
        assert got == pytest.approx(naive(p, lr, t), rel=1e-10, abs=1e-12)


def authors_mpl(p: dict, lr: np.ndarray, t: int) -> float:
    """The Multi-Power Law as the authors' code computes it (src/evaluation.py): the sum from k = 1."""
    area = np.cumsum(lr)
    gap = np.diff(lr, prepend=lr[0])  # lr[k] - lr[k-1], 0 at k = 0
    ld = np.sum(gap[1 : t + 1] * (1 - (1 + p["C"] * lr[1 : t + 1] ** -p["gamma"] * (area[t] - area[:t])) ** -p["beta"]))
    return p["L0"] + p["A"] * area[t] ** -p["alpha"] + p["B"] * ld


def test_the_mpl_is_the_authors_code_with_l0_b_x_peak_higher_and_a_warm_up_leaves_no_lasting_cost():
    lr = np.concatenate([np.linspace(0, 1, 300), np.ones(200), np.linspace(1, 0.1, 500), np.full(3000, 0.1)])
    law = Law("mpl", MPL, 1.0)
    at = np.array([1, 100, 299, 300, 600, 999, 1000, 3999])
    theirs = [authors_mpl({**MPL, "L0": MPL["L0"] - MPL["B"] * 1.0}, lr, t) for t in at]
    assert np.allclose(law.predict(lr, at), theirs, rtol=1e-6)
    warm = np.concatenate([np.linspace(0, 1, 300), np.ones(20000)])
    lag = law.predict(warm) - (MPL["L0"] + MPL["A"] * np.cumsum(warm) ** -MPL["alpha"])  # -B LD
    # the warm-up's small LRs anneal like a decay; its rise undoes that with G's lag, and then nothing is left
    assert lag[300] < -0.02 and -2e-3 < lag[-1] < 0 and np.all(np.diff(lag[400:]) > 0)
    assert np.allclose(law.predict(np.ones(500)), MPL["L0"] + MPL["A"] * np.arange(1, 501) ** -MPL["alpha"])


def test_compressed_changes_stay_within_1e4_of_the_exact_sum_and_a_step_decay_stays_exact():
    lr = cosine(30000, warmup=2000)
    at = np.arange(0, 30000, 97)
    p = {k: torch.tensor(v, dtype=torch.float64) for k, v in MPL.items()}
    exact = evaluate("mpl", p, Events.of("mpl", lr, 10**9), at).numpy()
    compressed = evaluate("mpl", p, Events.of("mpl", lr), at).numpy()
    assert len(Events.of("mpl", lr).step) <= 2048 < len(Events.of("mpl", lr, 10**9).step)
    assert np.max(np.abs(compressed - exact) / exact) < 1e-4
    jump = np.concatenate([np.linspace(0.01, 1, 3000), step_decay(20000)])
    few = Events.of("mpl", jump, 64)  # the warm-up's 2999 changes squeezed, the decay kept as it is
    assert 0.7 in np.round(few.drop, 12) and len(few.step) <= 70
    after = at[(at >= 3000) & (at < 23000)]  # within the warm-up 64 blocks are coarse (3e-4); after it, not
    assert np.allclose(evaluate("mpl", p, few, after).numpy(), evaluate("mpl", p, Events.of("mpl", jump, 10**9), after).numpy(), rtol=2e-4)


@pytest.mark.parametrize("kind,truth", [("mpl", MPL), ("tissue", TISSUE)])
def test_a_law_fitted_on_its_own_curves_predicts_an_unseen_schedule(kind, truth):
    law = Law(kind, truth, 1.0)
    train = [np.ones(3000), cosine(3000)]
    curves = [Curve(lr, np.arange(100, 3000, 50), law.predict(lr, np.arange(100, 3000, 50))) for lr in train]
    fitted = fit(curves, law=kind)
    unseen = step_decay(4000)
    assert fitted.fit_error < 2e-3 and not fitted.notes
    pred, true = fitted.predict(unseen), law.predict(unseen)
    assert np.max(np.abs(pred[200:] - true[200:]) / true[200:]) < 5e-3
    assert set(fitted.params) == set(truth)


def test_the_authors_adamw_alone_stops_far_from_a_law_generated_curve_and_without_the_prior_lbfgs_degenerates(monkeypatch):
    law = Law("mpl", MPL, 1.0)
    curves = [Curve(lr, np.arange(100, 3000, 50), law.predict(lr, np.arange(100, 3000, 50))) for lr in (np.ones(3000), cosine(3000))]
    bound = fitting.AUTHORS_FIT
    monkeypatch.setattr(fitting, "AUTHORS_FIT", math.inf)  # step 2 only
    assert fit(curves).fit_error > bound
    monkeypatch.setattr(fitting, "AUTHORS_FIT", bound)
    monkeypatch.setattr(fitting, "PRIOR", {})
    free = fit(curves)
    unseen = step_decay(4000)
    assert free.params["beta"] > 10 and np.max(np.abs(free.predict(unseen)[200:] / law.predict(unseen)[200:] - 1)) > 0.01


def test_params_are_in_the_units_of_the_lr_given():
    law = Law("mpl", MPL, 3e-4)
    lr = 3e-4 * cosine(500)
    unscaled = Law("mpl", law.params, 1.0)
    assert np.allclose(unscaled.predict(lr), law.predict(lr), rtol=1e-10)
    tissue = Law("tissue", TISSUE, 3e-4)
    assert np.allclose(Law("tissue", tissue.params, 1.0).predict(lr), tissue.predict(lr), rtol=1e-10)


@pytest.mark.parametrize("curve,message", [
    (Curve(np.array([]), np.array([1]), np.array([2.0])), "no LR sequence"),
    (Curve(np.ones(10), np.array([1, 2]), np.array([2.0, np.nan])), "non-finite"),
    (Curve(np.ones(10), np.array([1, 20]), np.array([2.0, 1.9])), "outside 0..9"),
    (Curve(np.full(10, np.inf), np.array([1]), np.array([2.0])), "infinite"),
    (Curve(np.ones(10), np.array([1, 2]), np.array([2.0])), "2 steps but 1 losses"),
])
def test_bad_curves_are_one_message(curve, message):
    with pytest.raises(PredictError, match=message):
        fit([curve, Curve(np.ones(100), np.arange(100), np.linspace(3, 2, 100))])


def test_too_few_curves_or_points_and_an_unknown_law_are_refused():
    one = Curve(np.ones(100), np.arange(100), np.linspace(3, 2, 100))
    with pytest.raises(PredictError, match="too few runs or points.*1 curves"):
        fit([one])
    short = Curve(np.ones(10), np.arange(5), np.linspace(3, 2, 5))
    with pytest.raises(PredictError, match="2 curves with 10 usable points; it needs at least 2 curves and 21 points"):
        fit([short, short])
    with pytest.raises(PredictError, match="not one of: mpl, tissue"):
        fit([one, one], law="chinchilla")


def test_a_law_that_cannot_describe_the_curves_says_it_fits_badly():
    rng = np.random.default_rng(0)
    noisy = [Curve(np.ones(400), np.arange(10, 400, 5), 2 + rng.uniform(0, 1.5, 78)) for _ in range(2)]
    law = fit(noisy, law="tissue")
    assert law.fit_error > 0.02 and any("fits badly" in n for n in law.notes)


def test_the_optimised_schedule_is_non_increasing_after_warm_up_and_beats_linear_decay():
    law = Law("mpl", MPL, 1.0)
    result = optimize(law, peak=1.0, steps=1000, warmup=0.05)
    m = result.multipliers
    assert len(m) == 1000 and np.allclose(m[:50], np.linspace(0, 1, 51)[1:])
    assert np.all(np.diff(m[49:]) <= 1e-12) and m.min() >= 0
    assert result.predicted < result.start - 1e-3
    assert result.predicted == pytest.approx(law.predict(m)[-1], rel=1e-9)


def test_the_full_run_of_a_sweep_in_tokens_is_its_longest_run() -> None:
    # budget_unit=tokens|samples labels budgets ('1,280 tokens'): absolute, so predict takes the most steps.
    from schedsweep.predict.sweep import full_steps_of

    tokens = pd.DataFrame({"budget": ["1,280 tokens", "2,560 tokens", "5,120 tokens"], "steps": [20, 40, 80]})
    assert full_steps_of(tokens) == 80
    assert full_steps_of(pd.DataFrame({"budget": [0.25, 1.0], "steps": [25, 100]})) == 100
    assert full_steps_of(pd.DataFrame({"budget": [0.5], "steps": [30]})) == 60
