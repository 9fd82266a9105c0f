"""Weight averaging, the cooldown's rival: an EMA or a LAWA average of the weights, kept beside training and
evaluated at each evaluation as `eval_loss_<kind>` (and `eval_<metric>_<kind>` for a task's extra metrics).

- `ema`: after update t, a <- decay * a + (1 - decay) * w_t (``torch.lerp``), with a = w_0 after update 0
  (no bias toward the initial weights). Horizon about 1 / (1 - decay) updates.
- `lawa` (latest weight averaging, Kaddour 2022; Sanyal et al. 2023): after every update t with
  (t + 1) % every == 0 the weights are kept, the last k of them; the average is their mean. Before the
  first one there is nothing to evaluate (the columns stay null).

Only the trainable parameters are averaged; buffers (running statistics) are the live model's. Training
never sees the average: evaluation copies it into the parameters and copies the live values back
(exact), so a run with averaging trains bit for bit as the same run without it. The average is part of
the checkpoint, so a resumed run, and a branch that starts from a fork, go on with exactly the average
they would have had. Schedule-free optimizers: the average is of the training point (their `y`).

A run's spec carries ``average: {kind, decay}`` or ``{kind, k, every}`` only when averaging is on, so a run
without it keeps its id. The LAWA interval is in steps (never a fraction of the budget): runs of several
budgets then agree on their averages over a shared prefix, which branching needs.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

class Average:
    """The running average of `params` as the spec's `average` part describes it."""

    def __init__(self, spec: dict[str, Any], params: list[torch.Tensor]) -> None:
        self.kind = str(spec["kind"])
        self.decay = float(spec.get("decay", 0.0))
        self.k, self.every = int(spec.get("k", 1)), int(spec.get("every", 1))
        self.params = params
        self.ema: list[torch.Tensor] | None = None
        self.kept: list[list[torch.Tensor]] = []

    @torch.no_grad()
    def update(self, step: int) -> None:
        """After update `step` (0-based)."""
        live = [p.detach() for p in self.params]
        if self.kind == "ema":
            if self.ema is None:
                self.ema = [p.clone() for p in live]
            else:
                torch._foreach_lerp_(self.ema, live, 1.0 - self.decay)
        elif (step + 1) % self.every == 0:
            self.kept = [*self.kept[-(self.k - 1):], [p.clone() for p in live]] if self.k > 1 else [[p.clone() for p in live]]

    def weights(self) -> list[torch.Tensor] | None:
        """The averaged parameters, None before there is any."""
        if self.kind == "ema":
            return self.ema
        if not self.kept:
            return None
        total = [torch.zeros_like(p) for p in self.kept[0]]
        for snapshot in self.kept:  # in order, so the sum is the same in every process
            torch._foreach_add_(total, snapshot)
        torch._foreach_div_(total, float(len(self.kept)))
        return total

    @contextmanager
    def swapped(self) -> Iterator[bool]:
        """The average in the parameters for the block (yields False, touching nothing, when there is none yet)."""
        weights = self.weights()
        if weights is None:
            yield False
            return
        with torch.no_grad():
            live = [p.detach().clone() for p in self.params]
            torch._foreach_copy_([p.data for p in self.params], weights)
        try:
            yield True
        finally:
            with torch.no_grad():
                torch._foreach_copy_([p.data for p in self.params], live)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ema": self.ema, "kept": self.kept}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """From a checkpoint (loaded onto the CPU): the tensors onto their parameters' devices."""
        def placed(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
            return [t.to(p.device) for t, p in zip(tensors, self.params, strict=True)]

        self.ema = None if state["ema"] is None else placed(state["ema"])
        self.kept = [placed(snapshot) for snapshot in state["kept"]]


def columns(kind: str, eval_loss: float, extra: dict[str, float]) -> dict[str, float]:
    """The row's averaged columns: eval_loss_<kind> and, per task metric (eval_error), <metric>_<kind>."""
    return {f"eval_loss_{kind}": eval_loss, **{f"{name}_{kind}": value for name, value in extra.items()}}


def evaluate(average: Average, evaluate_weights: Any) -> dict[str, float]:
    """The averaged columns of one evaluation: `evaluate_weights()` -> (eval_loss, extra) run with the average
    in the parameters and the RNG states put back afterwards (a task's evaluation that draws numbers must
    not move the training stream); {} before there is an average."""
    from schedsweep.train import checkpoint

    rng = checkpoint.rng_state()
    try:
        with average.swapped() as ready:
            if not ready:
                return {}
            eval_loss, extra = evaluate_weights()
    finally:
        checkpoint.restore_rng({"rng": rng})
    return columns(average.kind, eval_loss, extra)
