"""Loss-curve laws: the loss at step t as a function of the LR of every step up to t.

Both laws share one step convention (the Multi-Power Law authors' code): `lr[k]` is the LR of update k,
the loss observed at step t comes after updates 0..t, and

    S1(t)   = sum_{tau=0..t} lr[tau]                       (the area under the LR curve, warm-up included)
    d_k     = lr[k-1] - lr[k], with lr[-1] = max(lr)       (the LR drop at step k; a run starts from its peak)
    S_k(t)  = sum_{tau=k..t} lr[tau]

- Multi-Power Law (Luo et al., arXiv 2503.12811):
      L(t) = L0 + A S1(t)^-alpha - B sum_{k=0..t} d_k G(lr[k]^-gamma S_k(t)),   G(x) = 1 - (C x + 1)^-beta
  The sum runs over the warm-up, as the authors' code computes it (their published errors are for that law;
  tests/test_predict_published.py reproduces them): a warm-up's rise is a negative drop, which raises the
  loss with the same lag G as a drop lowers it. Their code sums from k = 1 with lr[0] = 0, without the
  drop d_0 = peak at step 0 (whose G is 1), so their L0 is B x peak below this one; the drop makes a run
  with a warm-up and one without the same law once the warm-up's rise has taken effect (the paper writes
  eta_0 = the peak too). Without it, a warm-up would cost B x peak for good (0.11 of the 25M model's loss).
- Scaling law with LR annealing (Tissue et al., arXiv 2408.11029), S2 the annealing area with momentum
  m_i = lam m_{i-1} + d_i over the drops after the warm-up (k > W, the first step at the largest LR),
  S2(t) = sum_{i<=t} m_i = sum_k d_k (1 - lam^(t-k+1)) / (1 - lam):
      L(t) = L0 + A S1(t)^-alpha - C S2(t)

A later rise of the LR (a cyclic schedule) is a negative drop. Both are sums over LR changes k of d_k h(t, k):
O(T^2) written per step. `Events` compresses the LR sequence to at most MAX_EVENTS changes (a block of
consecutive steps becomes one change of their summed drop, placed at their drop-weighted centre; a schedule
with fewer changes, such as a step decay, stays exact), and the sum is a (points x events) matrix product,
computed in row chunks.

Internally LRs are divided by a reference LR `scale` (the fitted runs' largest LR) so that every
parameter is O(1) for the optimiser; `Law.params` reports them in the units of the LR given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

MAX_EVENTS = 2048  # predictions within 1e-4 of the exact sum (1e-5 on the published curves; tests)
FIT_EVENTS = 256  # while fitting: within ~1.5e-4 of the exact sum, 8x faster
ROW_CHUNK = 2048  # rows of the (points x events) matrix computed at once: ~70 MB of float64
LR_FLOOR = 1e-12  # keeps lr^-gamma finite at a zero LR, whose G is replaced by its limit
LAWS = ("mpl", "tissue")
PARAMS = {"mpl": ("L0", "A", "alpha", "B", "C", "beta", "gamma"), "tissue": ("L0", "A", "alpha", "C", "lam")}


@dataclass(frozen=True)
class Events:
    """An LR sequence (already divided by the scale) as its cumulative area and its compressed changes."""

    area: np.ndarray  # area[t] = sum_{tau<=t} lr[tau]
    step: np.ndarray  # k of each change (int)
    before: np.ndarray  # area[k-1] (0 for k = 0): S_k(t) = area[t] - before
    lr: np.ndarray  # lr[k]
    drop: np.ndarray  # summed lr[k-1] - lr[k] of the block

    @classmethod
    def of(cls, kind: str, lr: np.ndarray, max_events: int = MAX_EVENTS) -> Events:
        """The changes law `kind` sums: for "mpl" every step's, from lr[-1] = the peak; for "tissue" those
        after the first peak."""
        lr = np.asarray(lr, dtype=np.float64)
        area = np.cumsum(lr)
        d = np.zeros_like(lr)
        d[1:] = lr[:-1] - lr[1:]
        if kind == "mpl":
            d[0] = lr.max() - lr[0]  # the run starts from its peak (eta_{-1}); a warm-up is a rise back to it
        else:
            d[: int(np.argmax(lr)) + 1] = 0  # S2 is an annealing area: the warm-up is in S1 only
        ks = np.flatnonzero(d)
        if len(ks) > max_events:
            ks, d_blocks = _blocks(ks, d, max_events)
        else:
            d_blocks = d[ks]
        return cls(area, ks, np.concatenate([[0.0], area])[ks], lr[ks], d_blocks)


def _blocks(ks: np.ndarray, d: np.ndarray, max_events: int) -> tuple[np.ndarray, np.ndarray]:
    """Group consecutive changes into about max_events blocks, each one change at its drop-weighted centre.

    A block ends every 1/(max_events/2) of the total variation sum |d_k| and every 1/(max_events/2) of
    the changes, so blocks are dense where the LR moves fast; a change larger than half a variation
    quantum (a step decay) is a block of its own, so it stays exact.
    """
    mag = np.abs(d[ks])
    half = max_events / 2
    quantum = mag.sum() / half
    position = np.floor((np.cumsum(mag) - mag) / quantum) + np.floor(np.arange(len(ks)) * half / len(ks))
    big = mag >= 0.5 * quantum
    starts = np.flatnonzero((np.diff(position, prepend=-1) != 0) | big | np.roll(big, 1))
    starts = np.union1d(starts, [0])
    weight = np.add.reduceat(mag, starts)
    centre = np.rint(np.add.reduceat(ks * mag, starts) / weight).astype(np.int64)
    return centre, np.add.reduceat(d[ks], starts)


@dataclass(frozen=True)
class Law:
    """A fitted law: `predict(lr)` gives the loss after every step; `params` in the LR's own units."""

    kind: str
    raw: dict[str, float]  # parameters for LRs divided by `scale`
    scale: float
    fit_error: float = float("nan")  # mean |L - L_hat| / L over the fitted points
    worst_fit_error: float = float("nan")  # its maximum
    fitted: int = 0  # points fitted
    seconds: float = 0.0  # time the fit took
    notes: list[str] = field(default_factory=list)

    @property
    def params(self) -> dict[str, float]:
        return in_units(self.kind, self.raw, self.scale)

    def predict(self, lr: np.ndarray, steps: np.ndarray | None = None) -> np.ndarray:
        """The predicted loss after every step of `lr` (or only at `steps`)."""
        lr = np.asarray(lr, dtype=np.float64)
        events = Events.of(self.kind, lr / self.scale)
        at = np.arange(len(lr)) if steps is None else np.asarray(steps, dtype=np.int64)
        theta = {k: torch.tensor(v, dtype=torch.float64) for k, v in self.raw.items()}
        with torch.no_grad():
            return np.concatenate([evaluate(self.kind, theta, events, at[i : i + ROW_CHUNK]).numpy()
                                   for i in range(0, len(at), ROW_CHUNK)] or [np.zeros(0)])


def in_units(kind: str, p: dict, s: float) -> dict:
    """Parameters for LRs divided by s -> the same law for the LRs themselves (floats or tensors)."""
    out = {"L0": p["L0"], "A": p["A"] * s ** p["alpha"], "alpha": p["alpha"]}
    if kind == "mpl":
        out.update(B=p["B"] / s, C=p["C"] * s ** (p["gamma"] - 1), beta=p["beta"], gamma=p["gamma"])
    else:
        out.update(C=p["C"] / s, lam=p["lam"])
    return out


def from_units(kind: str, p: dict, s: float) -> dict:
    """The inverse of in_units: parameters for the LRs -> for the LRs divided by s."""
    return in_units(kind, p, 1 / s)


def evaluate(kind: str, p: dict[str, torch.Tensor], ev: Events, at: np.ndarray) -> torch.Tensor:
    """The law's loss at steps `at` of the (scaled) LR sequence `ev`; differentiable in `p`."""
    t = torch.from_numpy(np.asarray(at, dtype=np.int64))
    return loss_at(kind, p, torch.from_numpy(ev.area[at]), t, torch.from_numpy(ev.step), torch.from_numpy(ev.before),
                   torch.from_numpy(ev.lr), torch.from_numpy(ev.drop))


def loss_at(kind: str, p: dict[str, torch.Tensor], area: torch.Tensor, t: torch.Tensor, step: torch.Tensor,
            before: torch.Tensor, lr: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """The law at steps t (area = S1(t)) given the LR changes (step k, area before k, lr[k], drop d_k).

    Differentiable in the parameters `p` and in the LRs (schedsweep.predict.optimize uses both).
    """
    counts = t[:, None] >= step[None, :]  # change k acts from step k on
    base = p["L0"] + p["A"] * area ** -p["alpha"]
    if kind == "mpl":
        since = torch.where(counts, area[:, None] - before[None, :], torch.zeros((), dtype=area.dtype))
        g = 1 - (p["C"] * lr.clamp(min=LR_FLOOR) ** -p["gamma"] * since + 1) ** -p["beta"]
        g = torch.where(lr > 0, g, (since > 0).to(g.dtype))  # lr^-gamma = inf: G = 1 once any LR has accumulated
        return base - p["B"] * (g @ drop)
    lag = (t[:, None] - step[None, :] + 1).clamp(min=0).to(area.dtype)
    h = (1 - p["lam"] ** lag) / (1 - p["lam"])
    return base - p["C"] * (h @ drop)
