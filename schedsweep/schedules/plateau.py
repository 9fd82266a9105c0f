"""Reduce-on-plateau: the one stateful schedule, driven by evaluation losses."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from schedsweep.schedules.base import require, unit


class Plateau:
    """Reduce-on-plateau: x factor after more than `patience` evaluations without improvement (torch ReduceLROnPlateau).

    Stateful, so not a Schedule: ``observe(loss)`` after each evaluation, ``f(t)`` before each update.
    Mode 'min'. A loss improves when ``loss < best * (1 - threshold)`` (rel) or ``loss < best - threshold``
    (abs); otherwise it is a bad evaluation. After ``patience + 1`` bad evaluations in a row the level
    becomes ``max(level * factor, min_lr)`` unless that changes it by no more than ``eps``; then ``cooldown``
    evaluations in which bad ones are not counted. ``min_lr`` and ``eps`` are ratios of the peak LR (torch
    takes absolute LRs, so the two agree at peak 1 or with both scaled by the peak). A warm-up ramps to
    the current level. Before any evaluation, f is the warm-up then 1.
    """

    def __init__(
        self,
        total_steps: int,
        warmup_steps: int,
        warmup_start: float = 0.0,
        *,
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        name = "plateau"
        require(0.0 < factor < 1.0, name, "factor", factor, "in (0, 1)")
        require(patience >= 0, name, "patience", patience, "a whole number of evaluations >= 0")
        require(threshold >= 0.0, name, "threshold", threshold, ">= 0")
        require(threshold_mode in ("rel", "abs"), name, "threshold_mode", threshold_mode, "'rel' or 'abs'")
        require(cooldown >= 0, name, "cooldown", cooldown, "a whole number of evaluations >= 0")
        unit(name, "min_lr", min_lr)
        require(eps >= 0.0, name, "eps", eps, ">= 0")
        self.warmup_steps, self.warmup_start = warmup_steps, warmup_start
        self.factor, self.patience, self.threshold, self.threshold_mode = factor, patience, threshold, threshold_mode
        self.cooldown, self.min_lr, self.eps = cooldown, min_lr, eps
        self.level, self.best, self.bad, self.cooling = 1.0, math.inf, 0, 0

    def observe(self, loss: float) -> None:
        """Record one evaluation loss (call after every evaluation); may lower the level for later steps."""
        loss = float(loss)
        better = loss < (self.best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                         else self.best - self.threshold)
        if better:
            self.best, self.bad = loss, 0
        else:
            self.bad += 1
        if self.cooling > 0:
            self.cooling -= 1
            self.bad = 0
        if self.bad > self.patience:
            lowered = max(self.level * self.factor, self.min_lr)
            if self.level - lowered > self.eps:
                self.level = lowered
            self.cooling, self.bad = self.cooldown, 0

    def __call__(self, t: Any) -> Any:
        steps = np.asarray(t, dtype=np.float64)
        if self.warmup_steps:
            ramp = self.warmup_start + (1.0 - self.warmup_start) * steps / self.warmup_steps
            values = self.level * np.where(steps < self.warmup_steps, ramp, 1.0)
        else:
            values = np.full_like(steps, self.level)
        return float(values) if np.ndim(t) == 0 else values

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep to resume: the level, the best loss and the counters."""
        return {"level": self.level, "best": self.best, "bad": self.bad, "cooling": self.cooling}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.level, self.best = float(state["level"]), float(state["best"])
        self.bad, self.cooling = int(state["bad"]), int(state["cooling"])
