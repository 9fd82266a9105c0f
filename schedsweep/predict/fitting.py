"""Fitting a loss-curve law to observed runs: `fit([Curve(...), ...], law="mpl" | "tissue") -> Law`.

Objective (both papers' choice): the sum over observed points of Huber(delta = 1e-3) of log L - log L_hat,
robust to the spikes of a training loss. Parameters are unconstrained (L0 as is, positive ones as logs,
the Tissue law's lam as a logit), in double precision.
1. Both laws start from the law without its LR-decay interaction, L0 + A S1^-alpha - B (1 - lr_t / peak)
   (the Multi-Power Law authors' initialisation), fitted by torch's L-BFGS (strong Wolfe line search) from
   a small grid of (L0, alpha).
2. Multi-Power Law: the authors' refinement (their src/fitting.py): AdamW on all seven parameters from
   that point with C = 1, beta = gamma = 0.5, step sizes 5e-2 (L0, A, B, C) and 5e-3 (alpha, beta, gamma),
   at most 200 steps, stopped after 20 without a lower objective; the lowest objective seen wins. Its
   initial values and step sizes are for their LRs (peak 3e-4), so it runs on LRs rescaled to that peak,
   and it starts L0 where theirs starts in their code's law (B x the warm-up's rise above step 1's L0;
   see schedsweep.predict.laws). This short, early-stopped descent is part of their result: run on to
   convergence (step 3 below), the law fits their three 25M training curves better (mean relative error
   0.00068 vs 0.00100) and predicts the six others worse (0.00121 vs 0.00096, docs/tutorials/predict.md).
3. Multi-Power Law outside the authors' setting (runs much shorter than theirs, other LR and loss scales):
   their fixed step sizes may stop far from a fit (a law-generated curve: 0.26% fit error). When the mean
   relative error on the fitted points is above AUTHORS_FIT, twice what their fits reach, L-BFGS continues
   to convergence, with a Gaussian prior on beta and gamma in log space (centre 0.6, width 0.03; the
   paper's fits give 0.58-0.66 from 25M to 400M parameters): without it, two or three curves let the fit
   trade C -> 0 against beta -> infinity (G's exponential limit), which predicts a step decay 3% off.
   Tissue law: L-BFGS from lam = 0.99 and 0.999; the lowest objective wins.
torch autograd is already a dependency; scipy would only add a second L-BFGS.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from schedsweep.errors import SchedsweepError
from schedsweep.predict.laws import FIT_EVENTS, LAWS, PARAMS, Events, Law, evaluate, from_units, in_units

HUBER_DELTA = 1e-3  # both papers' delta on log residuals
MIN_CURVES = 2
MIN_POINTS_PER_PARAM = 3
BAD_FIT = 0.02  # mean relative error on the fitted points above which a fit is reported as bad
# The Multi-Power Law authors' AdamW refinement (src/config.py, src/fitting.py of thu-yao-01-luo/MultiPowerLaw)
AUTHORS_PEAK = 3e-4  # the peak LR their initial values and step sizes are for
AUTHORS_START = {"C": 1.0, "beta": 0.5, "gamma": 0.5}
AUTHORS_LR = {"L0": 5e-2, "A": 5e-2, "B": 5e-2, "C": 5e-2, "alpha": 5e-3, "beta": 5e-3, "gamma": 5e-3}
AUTHORS_STEPS, AUTHORS_PATIENCE, AUTHORS_GRAD_NORM = 200, 20, 1e-5
AUTHORS_FIT = 2e-3  # their fits' mean relative error on the fitted curves is ~1e-3: above twice that, continue
PRIOR = {"mpl": {"beta": (0.6, 0.03), "gamma": (0.6, 0.03)}}  # name: (centre, width of log), step 3 above


class PredictError(SchedsweepError):
    """Curves that cannot be fitted or a prediction that cannot be made (too few points, NaN, no LR...)."""


@dataclass(frozen=True)
class Curve:
    """One run: the LR of every step from step 0 (warm-up included) and the loss observed at `steps`
    (sparse is fine): loss[i] is the loss after update steps[i]."""

    lr: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    name: str = ""

    def checked(self) -> Curve:
        label = f"curve {self.name!r}" if self.name else "a curve"
        lr = np.asarray(self.lr, dtype=np.float64).ravel()
        steps = np.asarray(self.steps).ravel()
        loss = np.asarray(self.loss, dtype=np.float64).ravel()
        if len(lr) == 0:
            raise PredictError(f"{label} has no LR sequence: give the LR of every step from step 0.")
        if not np.isfinite(lr).all() or (lr < 0).any():
            raise PredictError(f"{label} has NaN, infinite or negative LRs (first at step {np.flatnonzero(~(lr >= 0) | ~np.isfinite(lr))[0]}).")
        if len(steps) != len(loss):
            raise PredictError(f"{label} has {len(steps)} steps but {len(loss)} losses: give one loss per step.")
        bad = np.flatnonzero(~np.isfinite(loss) | (loss <= 0))
        if len(bad):
            raise PredictError(f"{label} has {len(bad)} non-finite or non-positive losses (first at step {steps[bad[0]]}): "
                               "a diverged run cannot be fitted; leave it out.")
        if len(steps) and (steps.min() < 0 or steps.max() >= len(lr) or np.any(steps != np.round(steps))):
            raise PredictError(f"{label} has steps outside 0..{len(lr) - 1} (its LR sequence has {len(lr)} steps).")
        steps = steps.astype(np.int64)
        keep = np.cumsum(lr)[steps] > 0  # no area under the LR yet: S1^-alpha is infinite
        return Curve(lr, steps[keep], loss[keep], self.name)


def fit(curves: list[Curve], law: str = "mpl") -> Law:
    """Fit `law` ("mpl" or "tissue") to the curves; the Law's fit_error says how well it fits them."""
    if law not in LAWS:
        raise PredictError(f"law {law!r} is not one of: {', '.join(LAWS)}.")
    curves = [c.checked() for c in curves]
    points = sum(len(c.steps) for c in curves)
    need = MIN_POINTS_PER_PARAM * len(PARAMS[law])
    if len(curves) < MIN_CURVES or points < need:
        raise PredictError(f"too few runs or points to fit law {law!r}: {len(curves)} curves with {points} usable points; "
                           f"it needs at least {MIN_CURVES} curves and {need} points (a point needs some LR area before it).")
    start = time.perf_counter()
    scale = max(float(c.lr.max()) for c in curves)
    if scale <= 0:
        raise PredictError("every LR of every curve is zero: there is nothing to fit a law of the LR to.")
    data = [(Events.of(law, c.lr / scale, FIT_EVENTS), c.steps, torch.from_numpy(np.log(c.loss))) for c in curves]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is faster than two fighting over shared cores
    try:
        raw = {k: float(v) for k, v in _fit(law, data, curves).items()}
    finally:
        torch.set_num_threads(threads)
    fitted = Law(law, raw, scale)
    rel = np.concatenate([np.abs(fitted.predict(c.lr, c.steps) - c.loss) / c.loss for c in curves])
    notes = []
    if not any((np.diff(c.lr) < 0).any() for c in curves):
        notes.append("no fitted run decays its LR: the law's LR-decay term is not determined by the data.")
    if not rel.mean() <= BAD_FIT:
        notes.append(f"the law fits badly: mean relative error {rel.mean():.3g} on the fitted points (above {BAD_FIT}); "
                     "its predictions are not to be trusted.")
    return Law(law, raw, scale, float(rel.mean()), float(rel.max()), len(rel), time.perf_counter() - start, notes)


def _objective(law: str, theta: dict[str, torch.Tensor], data: list) -> torch.Tensor:
    total = _huber_sum(law, _constrained(law, theta), data)
    for name, (centre, width) in PRIOR.get(law, {}).items():
        total = total + 0.5 * ((theta[f"log{name}"] - math.log(centre)) / width) ** 2
    return total


def _huber_sum(law: str, p: dict[str, torch.Tensor], data: list) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float64)
    for events, steps, log_loss in data:
        pred = evaluate(law, p, events, steps)
        total = total + _huber(log_loss - torch.log(pred.clamp(min=1e-10))).sum()
    return total


def _simple_objective(theta: dict[str, torch.Tensor], data: list) -> torch.Tensor:
    """Step 1: L0 + A S1^-alpha - B (1 - lr_t), the decay's effect without its history."""
    total = torch.zeros((), dtype=torch.float64)
    for events, steps, log_loss in data:
        area = torch.from_numpy(events.area[steps])
        lr_t = torch.from_numpy(np.diff(events.area, prepend=0.0)[steps])
        pred = theta["L0"] + theta["logA"].exp() * area ** -theta["logalpha"].exp() - theta["logB"].exp() * (1 - lr_t)
        total = total + _huber(log_loss - torch.log(pred.clamp(min=1e-10))).sum()
    return total


def _mean_error(law: str, p: dict[str, torch.Tensor], data: list) -> float:
    """Mean relative error over the fitted points (of the compressed sums: within ~1.5e-4 of the exact)."""
    with torch.no_grad():
        rel = [(evaluate(law, p, events, steps) / log_loss.exp() - 1).abs() for events, steps, log_loss in data]
    return float(torch.cat(rel).mean())


def _huber(r: torch.Tensor) -> torch.Tensor:
    a = r.abs()
    return torch.where(a < HUBER_DELTA, 0.5 * r**2, HUBER_DELTA * (a - 0.5 * HUBER_DELTA)) / HUBER_DELTA**2


def _constrained(law: str, theta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {"L0": theta["L0"]}
    for name in PARAMS[law][1:]:
        out[name] = torch.sigmoid(theta["logitlam"]) if name == "lam" else theta[f"log{name}"].exp()
    return out


def _minimise(objective, start: dict[str, float], iters: int = 150) -> tuple[float, dict[str, torch.Tensor]]:
    theta = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in start.items()}
    opt = torch.optim.LBFGS(list(theta.values()), lr=1, max_iter=iters, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = objective(theta)
        if value.requires_grad:
            value.backward()
        return value

    try:
        opt.step(closure)
        with torch.no_grad():
            value = float(objective(theta))
    except RuntimeError:  # a start that leaves the domain (NaN in the line search) is just a bad start
        value = math.inf
    if not math.isfinite(value) or any(not torch.isfinite(t).all() for t in theta.values()):
        value = math.inf
    return value, {k: t.detach() for k, t in theta.items()}


def _fit(law: str, data: list, curves: list[Curve]) -> dict[str, torch.Tensor]:
    low = min(float(c.loss.min()) for c in curves)
    high = max(float(c.loss.max()) for c in curves)
    best_simple = (math.inf, None)
    for l0_frac, alpha in itertools.product((0.5, 0.8, 0.95), (0.3, 0.6)):
        l0 = l0_frac * low
        # A from the first observed point: L - L0 ~ A S1^-alpha there
        first = min(data, key=lambda d: d[0].area[d[1][0]])
        a = max(high - l0, 1e-3) * first[0].area[first[1][0]] ** alpha
        start = {"L0": l0, "logA": math.log(a), "logalpha": math.log(alpha), "logB": math.log(0.05 * low)}
        best_simple = min(best_simple, _minimise(lambda th: _simple_objective(th, data), start), key=lambda r: r[0])
    simple = best_simple[1]
    if law == "mpl":
        # their code's law counts a warm-up's rise from lr[0] to the peak without the step-0 drop back that
        # laws.Events adds, so its L0 is B x that rise below this law's: their start, in this law's L0
        rise = float(np.mean([(c.lr.max() - c.lr[0]) / c.lr.max() for c in curves]))
        b = float(simple["logB"].exp())
        p = _authors_adamw(data, {"L0": float(simple["L0"]) + b * rise, "A": float(simple["logA"].exp()),
                                  "alpha": float(simple["logalpha"].exp()), "B": b})
        if _mean_error(law, p, data) <= AUTHORS_FIT:
            return p
        value, theta = _minimise(lambda th: _objective(law, th, data), {"L0": float(p["L0"]), **{
            f"log{k}": math.log(float(v)) for k, v in p.items() if k != "L0"}}, iters=300)
        return _constrained(law, theta) if math.isfinite(value) else p
    base = {"L0": float(simple["L0"]), "logA": float(simple["logA"]), "logalpha": float(simple["logalpha"])}
    best = (math.inf, None)
    for lam in (0.99, 0.999):
        extra = {"logC": float(simple["logB"]) + math.log(1 - lam), "logitlam": math.log(lam / (1 - lam))}
        best = min(best, _minimise(lambda th: _objective(law, th, data), {**base, **extra}), key=lambda r: r[0])
    if best[1] is None:
        raise PredictError(f"law {law!r} could not be fitted: every start left the law's domain (NaN); "
                           "check that the losses fall as the LR area grows.")
    return _constrained(law, best[1])


def _authors_adamw(data: list, simple: dict[str, float]) -> dict[str, torch.Tensor]:
    """Step 2 for the Multi-Power Law, on parameters for LRs rescaled to the authors' peak (see the module's doc).

    `simple` is step 1's L0, A, alpha, B for LRs divided by the fitted runs' peak; returns the parameters
    for those LRs.
    """
    start = in_units("mpl", {**simple, "C": 0.0, "beta": 0.0, "gamma": 0.0}, AUTHORS_PEAK) | AUTHORS_START
    theta = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in start.items()}
    opt = torch.optim.AdamW([{"params": [theta[k]], "lr": lr} for k, lr in AUTHORS_LR.items()])
    best, best_value, lowest, stale = None, math.inf, math.inf, 0
    for step in range(AUTHORS_STEPS):
        opt.zero_grad()
        # their objective is the plain Huber sum: Adam's eps and the gradient-norm stop are for its scale
        value = _huber_sum("mpl", from_units("mpl", theta, AUTHORS_PEAK), data) * HUBER_DELTA**2
        if not torch.isfinite(value):
            break
        value.backward()
        if value.item() < best_value:
            best, best_value = {k: t.detach().clone() for k, t in theta.items()}, value.item()
        grad_norm = float(torch.cat([t.grad.reshape(1) for t in theta.values()]).norm())
        stale = 0 if value.item() < lowest else stale + 1
        lowest = min(lowest, value.item())
        if (step > AUTHORS_PATIENCE and stale >= AUTHORS_PATIENCE) or grad_norm < AUTHORS_GRAD_NORM:
            break
        opt.step()
    if best is None:
        raise PredictError("law 'mpl' could not be fitted: its first step left the law's domain (NaN); "
                           "check that the losses fall as the LR area grows.")
    return from_units("mpl", best, AUTHORS_PEAK)
