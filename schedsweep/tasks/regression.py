"""regression: an MLP fitting Friedman's first regression function under label noise. Generated data, no downloads.

Data (fixed by `data_seed`, so every run seed sees the same problem), Friedman (1991), as in
scikit-learn's make_friedman1:
    x ~ U(0, 1)^n_features  (only the first 5 features matter)
    y = 10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 + 10 x4 + 5 x5 + noise * N(0, 1)
y is then standardised with the train split's mean and std. The first n_train points train, the next
n_eval are held out. The student is a ReLU MLP trained with the mean squared error; `seed` drives its
init and the batch order (a new permutation per epoch, as in the digits task, so batches(start_step)
draws one permutation instead of replaying the stream).

Why label noise: it makes the minibatch gradient noisy near the optimum, which is the regime where a
decaying learning rate pays. The noiseless target's variance is ~24, so at noise 3 the held-out MSE
floor (of standardised y) is ~9 / 33 = 0.27.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from schedsweep.errors import TaskError
from schedsweep.tasks import derive_seed, evaluating, seeded
from schedsweep.tasks.digits import epoch_batches, no_decay_groups


class Regression:
    """A ReLU MLP on noisy Friedman #1 data (see the module docstring)."""

    def __init__(
        self, *, n_features: int = 10, hidden: int = 64, n_train: int = 4096, n_eval: int = 1024,
        batch_size: int = 32, noise: float = 3.0, data_seed: int = 0, seed: int = 0,
    ) -> None:
        self.check_params(dict(n_features=n_features, hidden=hidden, n_train=n_train, n_eval=n_eval,
                               batch_size=batch_size, noise=noise, data_seed=data_seed))
        self.n_features, self.hidden, self.n_train, self.batch_size, self.seed = n_features, hidden, n_train, batch_size, seed
        x, y = make_data(n_features, n_train + n_eval, noise, data_seed)
        mean, std = y[:n_train].mean(), y[:n_train].std()
        y = (y - mean) / std
        self.x_train, self.y_train = x[:n_train], y[:n_train]
        self.x_eval, self.y_eval = x[n_train:], y[n_train:]

    @staticmethod
    def check_params(params: dict[str, Any]) -> None:
        """TaskError unless sizes are integers (n_features >= 5, the others >= 1), batch_size <= n_train and noise >= 0."""
        for key, low in (("n_features", 5), ("hidden", 1), ("n_train", 2), ("n_eval", 1), ("batch_size", 1), ("data_seed", 0)):
            value = params.get(key, low)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise TaskError(f"task regression: {key} must be an integer >= {low}; got {value!r}.")
        if params.get("batch_size", 1) > params.get("n_train", 4096):
            raise TaskError(
                f"task regression: batch_size ({params['batch_size']}) must be <= n_train ({params['n_train']})."
            )
        noise = params.get("noise", 0.0)
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
            raise TaskError(f"task regression: noise (the std of the label noise) must be a number >= 0; got {noise!r}.")

    def build_model(self) -> nn.Module:
        """Linear(n_features, hidden) -> ReLU -> Linear(hidden, hidden) -> ReLU -> Linear(hidden, 1), torch's default init."""
        h = self.hidden
        with seeded(derive_seed(self.seed, "init")):
            return nn.Sequential(nn.Linear(self.n_features, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """Weights decay; biases do not."""
        return no_decay_groups(model)

    def batches(self, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x float32 [batch_size, n_features], y float32 [batch_size]) from step `start_step` on."""
        for idx in epoch_batches(self.n_train, self.batch_size, derive_seed(self.seed, "batches"), start_step):
            yield self.x_train[idx], self.y_train[idx]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Mean squared error of model(x) against the standardised y."""
        x, y = batch
        return F.mse_loss(model(x).squeeze(1), y)

    def evaluate(self, model: nn.Module) -> float:
        """Mean squared error over the n_eval held-out points."""
        with evaluating(model):
            return F.mse_loss(model(self.x_eval).squeeze(1), self.y_eval).item()


def make_data(n_features: int, n: int, noise: float, data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n points of Friedman #1: x float32 [n, n_features], y float32 [n] (not standardised)."""
    g = torch.Generator().manual_seed(derive_seed(data_seed, "friedman1"))
    x = torch.rand(n, n_features, generator=g)
    y = (10 * torch.sin(math.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4]
         + noise * torch.randn(n, generator=g))
    return x, y
