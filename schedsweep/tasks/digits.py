"""digits: a small CNN on scikit-learn's bundled 8x8 handwritten digits. No downloads.

Data: `sklearn.datasets.load_digits()` (1,797 grey 8x8 images of 0-9 shipped inside scikit-learn,
pixel values 0..16, scaled here to [0, 1]). A fixed permutation (generator seed 0, the same for
every run seed) puts the first 1,497 images in the train split and holds out the last 300.

Model: Conv(1 -> c, 3x3, pad 1) -> ReLU -> Conv(c -> 2c, 3x3, pad 1) -> ReLU -> MaxPool 2
-> Linear(2c * 16, 10), trained with cross-entropy; `seed` drives its init and the batch order.

Batches: a fresh permutation of the train split every epoch, the last partial batch dropped. Epoch e's
permutation is drawn from its own generator, seeded derive_seed(seed, f"digits-epoch-{e}"), so
batches(start_step) starts at any step by drawing one permutation, never by replaying the stream.
"""

from __future__ import annotations

import functools
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from schedsweep.errors import TaskError
from schedsweep.tasks import derive_seed, evaluating, seeded

N_HELD_OUT = 300  # of 1,797 images; the same 300 for every run seed
N_TRAIN = 1797 - N_HELD_OUT
SPLIT_SEED = 0


class Digits:
    """A two-layer CNN classifying scikit-learn's 8x8 digits (see the module docstring)."""

    def __init__(self, *, channels: int = 8, batch_size: int = 32, seed: int = 0) -> None:
        self.check_params(dict(channels=channels, batch_size=batch_size))
        self.channels, self.batch_size, self.seed = channels, batch_size, seed
        (self.x_train, self.y_train), (self.x_eval, self.y_eval) = load()

    @staticmethod
    def check_params(params: dict[str, Any]) -> None:
        """TaskError unless channels and batch_size are integers >= 1 and batch_size fits the train split."""
        for key in ("channels", "batch_size"):
            value = params.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TaskError(f"task digits: {key} must be an integer >= 1; got {value!r}.")
        if params.get("batch_size", 1) > N_TRAIN:
            raise TaskError(f"task digits: batch_size must be <= {N_TRAIN} (the train split); got {params['batch_size']}.")

    def build_model(self) -> nn.Module:
        """The CNN, with torch's default init drawn from derive_seed(seed, 'init')."""
        c = self.channels
        with seeded(derive_seed(self.seed, "init")):
            return nn.Sequential(
                nn.Unflatten(1, (1, 8, 8)),
                nn.Conv2d(1, c, 3, padding=1), nn.ReLU(),
                nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2), nn.Flatten(),
                nn.Linear(2 * c * 16, 10),
            )

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """Weights decay; biases (every parameter with fewer than 2 dimensions) do not."""
        return no_decay_groups(model)

    def batches(self, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x float32 [batch_size, 64], y int64 [batch_size]) from step `start_step` on."""
        for idx in epoch_batches(N_TRAIN, self.batch_size, derive_seed(self.seed, "batches"), start_step):
            yield self.x_train[idx], self.y_train[idx]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy of model(x) against y."""
        x, y = batch
        return F.cross_entropy(model(x), y)

    def evaluate(self, model: nn.Module) -> float:
        """Mean cross-entropy over the 300 held-out images (one forward pass)."""
        with evaluating(model):
            return F.cross_entropy(model(self.x_eval), self.y_eval).item()

    def eval_metrics(self, model: nn.Module) -> dict[str, float]:
        """eval_error: the fraction of the held-out images whose arg-max digit is wrong (REX ranks by test error)."""
        with evaluating(model):
            return {"eval_error": (model(self.x_eval).argmax(dim=1) != self.y_eval).float().mean().item()}



@functools.lru_cache(maxsize=1)  # the loop builds a task per run; reading the bundled CSV takes ~10 ms
def load() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """((x_train, y_train), (x_eval, y_eval)): x float32 [n, 64] in [0, 1], y int64 [n]. Callers must not modify them."""
    from sklearn.datasets import load_digits  # ~0.5 s to import: only tasks that use the data pay it

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    x, y = x[order], y[order]
    return (x[:-N_HELD_OUT], y[:-N_HELD_OUT]), (x[-N_HELD_OUT:], y[-N_HELD_OUT:])


def epoch_batches(n: int, batch_size: int, seed: int, start_step: int = 0) -> Iterator[torch.Tensor]:
    """Index batches over range(n): a new permutation per epoch, the last partial batch dropped.

    Epoch e's permutation comes from derive_seed(seed, f"epoch-{e}"), so the stream from
    `start_step` is the full stream with its first start_step batches dropped, at the cost of one
    permutation rather than start_step batches.
    """
    per_epoch = n // batch_size
    epoch, first = divmod(start_step, per_epoch)
    while True:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, f"epoch-{epoch}")))
        for b in range(first, per_epoch):
            yield order[b * batch_size:(b + 1) * batch_size]
        epoch, first = epoch + 1, 0


def no_decay_groups(model: nn.Module) -> list[dict[str, Any]]:
    """[{params: weights}, {params: biases and norm scales, weight_decay: 0}]: decay only matrices and kernels."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.dim() >= 2]},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
