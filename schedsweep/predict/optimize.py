"""A schedule that minimises a fitted law's predicted final loss (the Multi-Power Law paper's procedure).

Over a budget of T steps with the fitted runs' warm-up of W steps (a linear ramp to the peak), the LR
after the warm-up is non-increasing by construction:

    lr(knot j) = peak * max(FLOOR, 1 - sum_{i<=j} relu(u_i) / K),   K knots, linear between knots,

and Adam minimises the law's loss at step T-1 over u (starting from linear decay to the floor, 1% of the peak). The result
is written as a `piecewise` schedule over the budget fraction, like `schedsweep refine`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from schedsweep.schedules.tabulated import piecewise_spec
from schedsweep.predict.fitting import PredictError
from schedsweep.predict.laws import Law, loss_at

KNOTS = 200  # free LR values after the warm-up: the YAML's resolution
STEPS = 400  # Adam steps
ADAM_LR = 0.05
FLOOR = 0.01  # lowest LR / peak: the laws' derivative in the LR is singular at 0 (lr^-gamma), which stalls Adam


@dataclass(frozen=True)
class Optimized:
    multipliers: np.ndarray  # lr / peak at every step of the budget
    predicted: float  # the law's final loss for it
    start: float  # the law's final loss for the starting point (linear decay)


def _final_loss(law: Law, lr: torch.Tensor) -> torch.Tensor:
    """The law's loss after the last step of `lr` (LRs divided by the law's scale), differentiable in lr."""
    area = torch.cumsum(lr, 0)
    k = torch.arange(len(lr))
    drop = torch.cat([lr.max() - lr[:1], lr[:-1] - lr[1:]])  # the changes laws.Events sums, from lr[-1] = the peak
    if law.kind == "tissue":  # its annealing area starts at the peak
        drop = torch.where(k > int(torch.argmax(lr.detach())), drop, torch.zeros((), dtype=lr.dtype))
    p = {name: torch.tensor(v, dtype=torch.float64) for name, v in law.raw.items()}
    t = torch.tensor([len(lr) - 1])
    return loss_at(law.kind, p, area[-1:], t, k, torch.cat([area.new_zeros(1), area[:-1]]), lr, drop)[0]


def optimize(law: Law, peak: float, steps: int, warmup: float) -> Optimized:
    """Minimise the law's final loss over non-increasing LRs after a warm-up of `warmup` x steps."""
    w = int(round(warmup * steps))
    if steps < 4 or steps - w < 2:
        raise PredictError(f"--optimize needs a budget of at least 4 steps after the warm-up; got {steps} steps, {w} of warm-up.")
    knots = min(KNOTS, steps - w)
    z = torch.linspace(0, 1, steps - w, dtype=torch.float64) * (knots - 1)
    left = z.floor().long().clamp(max=knots - 2)
    frac = z - left
    ramp = torch.linspace(0, 1, w + 1, dtype=torch.float64)[1:] if w else torch.zeros(0, dtype=torch.float64)
    u = torch.ones(knots, dtype=torch.float64)
    u[0] = 0.0  # the first knot starts at the peak
    u.requires_grad_(True)
    scaled = peak / law.scale

    def schedule(u: torch.Tensor) -> torch.Tensor:
        level = (1 - torch.cumsum(torch.relu(u), 0) / (knots - 1)).clamp(min=FLOOR)
        after = level[left] * (1 - frac) + level[left + 1] * frac
        return torch.cat([ramp, after])

    opt = torch.optim.Adam([u], lr=ADAM_LR)
    with torch.no_grad():
        start = float(_final_loss(law, scaled * schedule(u)))
    best = (start, schedule(u).detach())
    for _ in range(STEPS):
        opt.zero_grad()
        loss = _final_loss(law, scaled * schedule(u))
        loss.backward()
        opt.step()
        with torch.no_grad():
            value = float(_final_loss(law, scaled * schedule(u)))
            if value < best[0]:
                best = (value, schedule(u).detach())
    return Optimized(best[1].numpy(), best[0], start)


def schedule_yaml(result: Optimized, name: str, law: Law, source: str, points: int = 201) -> dict[str, Any]:
    """A piecewise schedule over [0, 1] of the budget, provenance in its description."""
    m = np.clip(result.multipliers, 0, 1)
    return piecewise_spec(
        np.arange(len(m)) / len(m), m, points=points,
        description=f"{name}: minimises the fitted {law.kind} law's predicted final loss "
        f"({result.predicted:.4g}; linear decay: {result.start:.4g}) over non-increasing LRs after the warm-up; "
        f"fitted on {source} (fit error {law.fit_error:.3g})",
        source="Luo et al., A Multi-Power Law for Loss Curve Prediction Across LR Schedules (arXiv 2503.12811), schedule optimisation")
