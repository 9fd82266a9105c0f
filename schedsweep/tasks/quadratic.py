"""quadratic: DeepOBS's noisy quadratic (Schneider, Balles, Hennig, ICLR 2019). No data files.

Problem (fixed by `data_seed`, so every run seed sees the same Q):
    Q = R^T diag(lambda) R,  90 eigenvalues ~ U(0, 1) and 10 ~ U(30, 60),  R a random orthogonal matrix
    loss(theta; x) = 1/2 (theta - x)^T Q (theta - x),  x ~ N(0, noise^2 I_dim)
The parameter theta starts at 1 in every coordinate, as in DeepOBS; `seed` drives only the noise.
Unlike DeepOBS, which draws a fixed train set of 1,000 points, every step draws fresh x (an
infinite stream): step s's batch comes from its own generator, seeded derive_seed(seed, f"quadratic-{s}"),
so batches(start_step) starts anywhere at no cost.

evaluate() is exact, not sampled: the expected loss over x minus its floor,
    E_x[loss] - noise^2 tr(Q) / 2 = 1/2 theta^T Q theta  (0 at the optimum theta = 0),
so tables show the excess loss rather than a constant of ~89 that would hide the differences.
"""

from __future__ import annotations

import functools
from typing import Any, Iterator

import torch
from torch import nn

from schedsweep.errors import TaskError
from schedsweep.tasks import derive_seed, evaluating

N_SMALL, N_LARGE = 90, 10  # DeepOBS's spectrum: 90 eigenvalues in (0, 1), 10 in (30, 60)


class Quadratic:
    """theta in R^dim on a noisy quadratic bowl with DeepOBS's spectrum (see the module docstring)."""

    def __init__(self, *, batch_size: int = 32, noise: float = 0.6, data_seed: int = 0, seed: int = 0) -> None:
        self.check_params(dict(batch_size=batch_size, noise=noise, data_seed=data_seed))
        self.batch_size, self.noise, self.seed = batch_size, float(noise), seed
        self.q = hessian(data_seed)

    @staticmethod
    def check_params(params: dict[str, Any]) -> None:
        """TaskError unless batch_size is an integer >= 1, noise a number >= 0 and data_seed an integer >= 0."""
        batch_size, data_seed = params.get("batch_size", 1), params.get("data_seed", 0)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise TaskError(f"task quadratic: batch_size must be an integer >= 1; got {batch_size!r}.")
        if isinstance(data_seed, bool) or not isinstance(data_seed, int) or data_seed < 0:
            raise TaskError(f"task quadratic: data_seed must be an integer >= 0; got {data_seed!r}.")
        noise = params.get("noise", 0.0)
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
            raise TaskError(f"task quadratic: noise (the std of x) must be a number >= 0; got {noise!r}.")

    def build_model(self) -> nn.Module:
        """theta = ones(dim): DeepOBS's start, the same for every seed."""
        return Theta(len(self.q))

    def batches(self, start_step: int = 0) -> Iterator[torch.Tensor]:
        """x float32 [batch_size, dim] ~ N(0, noise^2 I), step s drawn from its own seed."""
        step = start_step
        while True:
            g = torch.Generator().manual_seed(derive_seed(self.seed, f"quadratic-{step}"))
            yield torch.randn(self.batch_size, len(self.q), generator=g) * self.noise
            step += 1

    def loss(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of 1/2 (theta - x)^T Q (theta - x)."""
        d = model() - batch
        return 0.5 * ((d @ self.q) * d).sum(dim=1).mean()

    def evaluate(self, model: nn.Module) -> float:
        """1/2 theta^T Q theta: the expected loss over fresh x minus its floor noise^2 tr(Q) / 2."""
        with evaluating(model):
            theta = model()
            return 0.5 * float(theta @ self.q @ theta)


class Theta(nn.Module):
    """The quadratic's only parameter; forward() returns it."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.ones(dim))

    def forward(self) -> torch.Tensor:
        return self.theta


@functools.lru_cache(maxsize=4)
def hessian(data_seed: int) -> torch.Tensor:
    """Q = R^T diag(lambda) R (float32 [100, 100], symmetric positive definite). Callers must not modify it."""
    g = torch.Generator().manual_seed(derive_seed(data_seed, "quadratic-hessian"))
    eigenvalues = torch.cat([torch.rand(N_SMALL, generator=g, dtype=torch.float64),
                             30 + 30 * torch.rand(N_LARGE, generator=g, dtype=torch.float64)])
    r, _ = torch.linalg.qr(torch.randn(N_SMALL + N_LARGE, N_SMALL + N_LARGE, generator=g, dtype=torch.float64))
    q = r.T @ torch.diag(eigenvalues) @ r
    return ((q + q.T) / 2).float()  # rounding leaves r.T @ D @ r slightly asymmetric
