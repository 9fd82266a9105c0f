"""Fitting a loss-curve law to observed runs: `fit([Curve(...), ...], law="mpl" | "tissue") -> Law`.

Objective (both papers' choice): the sum over observed points of Huber(delta = 1e-3) of log L - log L_hat,
robust to the spikes of a training loss. Optimiser: torch's L-BFGS (strong Wolfe line search) in
double precision on unconstrained parameters (L0 as is, positive ones as logs, the Tissue law's lam as
a logit), from a few starts:
1. the law without its LR-decay interaction, L0 + A S1^-alpha - B (1 - lr_t) (the Multi-Power Law
   authors' initialisation), from a small grid of (L0, alpha);
2. the full law from that point (Multi-Power Law: C = 0.1 in scaled units, beta = gamma = 0.6; Tissue law:
   lam = 0.99 and 0.999); the lowest objective wins.
The Multi-Power Law's exponents beta and gamma carry a Gaussian prior in log space (centre 0.6, width 0.03;
the paper's fits give 0.58-0.60 and 0.63-0.66 from 25M to 400M parameters): two or three runs do not
determine them, and left free they fit the training curves better and predict the published test curves
worse (25M: mean relative error 0.00137 free, 0.00121 with the prior, both measured with the warm-up in the
sum; 0.00119 now).
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
from schedsweep.predict.laws import FIT_EVENTS, LAWS, PARAMS, Events, Law, evaluate

HUBER_DELTA = 1e-3  # both papers' delta on log residuals
MIN_CURVES = 2
MIN_POINTS_PER_PARAM = 3
BAD_FIT = 0.02  # mean relative error on the fitted points above which a fit is reported as bad
PRIOR = {"mpl": {"beta": (0.6, 0.03), "gamma": (0.6, 0.03)}}  # name: (centre, width of log), see above


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
    data = [(Events.of(c.lr / scale, FIT_EVENTS), c.steps, torch.from_numpy(np.log(c.loss))) for c in curves]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is faster than two fighting over shared cores
    try:
        theta = _fit(law, data, curves)
    finally:
        torch.set_num_threads(threads)
    raw = {k: float(v) for k, v in _constrained(law, theta).items()}
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
    p = _constrained(law, theta)
    total = torch.zeros((), dtype=torch.float64)
    for events, steps, log_loss in data:
        pred = evaluate(law, p, events, steps)
        total = total + _huber(log_loss - torch.log(pred.clamp(min=1e-10))).sum()
    for name, (centre, width) in PRIOR.get(law, {}).items():
        total = total + 0.5 * ((theta[f"log{name}"] - math.log(centre)) / width) ** 2
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
    base = {"L0": float(simple["L0"]), "logA": float(simple["logA"]), "logalpha": float(simple["logalpha"])}
    if law == "mpl":
        grid = [{"logB": float(simple["logB"]), "logC": math.log(c), "logbeta": math.log(b), "loggamma": math.log(g)}
                for c, b, g in itertools.product((0.1,), (0.6,), (0.6,))]
    else:
        grid = [{"logC": float(simple["logB"]) + math.log(1 - lam), "logitlam": math.log(lam / (1 - lam))}
                for lam in (0.99, 0.999)]
    best = (math.inf, None)
    for extra in grid:
        best = min(best, _minimise(lambda th: _objective(law, th, data), {**base, **extra}), key=lambda r: r[0])
    if best[1] is None:
        raise PredictError(f"law {law!r} could not be fitted: every start left the law's domain (NaN); "
                           "check that the losses fall as the LR area grows.")
    return best[1]
