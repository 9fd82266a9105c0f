"""Trials that rewind: how an adaptive schedule tries LRs from the current state and undoes them.

The protocol, in two halves:

* **A controller** (:class:`Controller`) is a schedule that also picks its LRs by trying them. Besides
  ``f(step)``, ``state_dict()`` and ``load_state_dict()`` (as ``plateau``), it has ``kept_steps`` (how many
  updates the loop keeps: the run's budget less the updates its trials will take, fixed when it is
  built, so a run's ``steps`` counts every update it pays for) and ``wants_search(step)`` / ``search(step,
  trials)``: before kept update ``step`` the loop asks ``wants_search``; when true it calls ``search`` with
  a :class:`Trials` positioned at that state. AutoLRS (:mod:`schedsweep.schedules.autolrs`) is the first.
* **The loop's side** (:class:`Trials`): ``run(factor, steps, eval_every)`` trains ``steps`` updates at LR
  ``peak * factor`` from the current state with the loop's own update (:class:`loop.Updater`: the same
  accumulation, clipping and precision), on the batches the kept run would see next, and returns the
  training losses and, every ``eval_every`` updates, the held-out losses; then it restores the model, the
  optimizer (state and LRs), the fp16 scaler and the torch/Python RNG exactly. The data position needs no
  restoring: a trial reads its own ``batches(start)`` stream and the kept stream never moves. A trial
  followed by its restore leaves the run bit-identical to one that never tried (tests/test_trials.py).

Compute: every trial update is added to the run's ``trial_steps`` when its trial finishes (a trial whose
loss turns non-finite stops there); a run's ``steps_done`` is its kept updates plus its trial updates.

Preemption: between trial updates the loop's stop flag is checked. On a stop the trial is undone, a
checkpoint is written (the controller's ``state_dict`` holds the trials it has finished: AutoLRS's BO
history) and :class:`Preempted` is raised; the resumed run redoes only the unfinished trial, from the
same state with the same RNG, so it reaches the same result as one never stopped.

A next method plugs in the same way: a hypergradient LR, say, would be a Controller whose
``wants_search`` is true at every step it adapts and whose ``search`` runs one-step trials at ``factor``
and ``factor * (1 +- eps)`` and keeps the better direction in its state.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from schedsweep.train import checkpoint, loop


class Preempted(Exception):
    """A stop arrived during a search; the state is restored and checkpointed, the loop returns requeued."""


@runtime_checkable
class Controller(Protocol):
    kept_steps: int

    def __call__(self, t: Any) -> Any: ...
    def wants_search(self, step: int) -> bool: ...
    def search(self, step: int, trials: Trials) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrialResult:
    factor: float
    losses: list[float] = field(default_factory=list)  # training loss of each trial update (NaN stays NaN)
    eval_losses: list[float] = field(default_factory=list)  # held-out loss after every eval_every updates


class Trials:
    """The loop's side of the protocol at the state before a kept update; `start` is that update's first batch
    (update x accumulate), `seed` the run's seed (for the controller's own random choices)."""

    def __init__(self, updater: loop.Updater, task: Any, start: int, seed: int, run: dict[str, Any], stop: Any,
                 dist: Any, evaluate: Callable[[], float], checkpoint_now: Callable[[], None]) -> None:
        self.updater, self.task, self.start, self.seed = updater, task, start, seed
        self.run_numbers, self.stop, self.dist = run, stop, dist
        self.evaluate, self.checkpoint_now = evaluate, checkpoint_now

    def run(self, factor: float, steps: int, eval_every: int = 0) -> TrialResult:
        """Train `steps` updates at ``peak * factor`` from here, measure, and restore the state exactly."""
        saved = self._snapshot()
        result = TrialResult(float(factor))
        batches = loop.batch_stream(self.task, self.start)
        try:
            for i in range(steps):
                if self.dist.any(self.stop.signal is not None):
                    self._restore(saved)
                    self.checkpoint_now()
                    raise Preempted
                loss, _, _, _ = self.updater.update(batches, float(factor))
                value = float(loss)
                result.losses.append(value)
                if not math.isfinite(value):  # diverged: the rest of this trial is not worth its steps
                    break
                if eval_every and (i + 1) % eval_every == 0:
                    result.eval_losses.append(self.evaluate())
        finally:
            self._restore(saved)
        self.run_numbers["trial_steps"] += len(result.losses)  # the updates taken (a diverged trial stops early)
        return result

    def _snapshot(self) -> dict[str, Any]:
        u = self.updater
        return copy.deepcopy({"model": _model(u).state_dict(), "optimizer": u.optimizer.state_dict(),
                              "scaler": u.precision.scaler.state_dict(), "rng": checkpoint.rng_state()})

    def _restore(self, saved: dict[str, Any]) -> None:
        u = self.updater
        _model(u).load_state_dict(saved["model"])
        u.optimizer.load_state_dict(copy.deepcopy(saved["optimizer"]))
        if saved["scaler"]:
            u.precision.scaler.load_state_dict(saved["scaler"])
        checkpoint.restore_rng({"rng": saved["rng"]})
        u.optimizer.zero_grad()


def _model(updater: loop.Updater) -> Any:
    """The bare module behind DDP / torch.compile wrappers (whose state_dict keys differ)."""
    net = updater.net
    net = getattr(net, "_orig_mod", net)
    return getattr(net, "module", net)
