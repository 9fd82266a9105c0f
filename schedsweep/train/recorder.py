"""A run's running numbers, kept the same way by the built-in loop (schedsweep.train.run) and by a user's
script through schedsweep.client: the last training and evaluation loss, the best evaluation loss, the
samples seen and the wall clock. They travel in the checkpoint, so a resumed run goes on counting, and
become the run's status (final_loss, final_eval_loss, best_eval_loss; None where not finite)."""

from __future__ import annotations

import math
from typing import Any


def fresh() -> dict[str, Any]:
    return {"samples": 0, "loss": math.nan, "eval_loss": math.nan, "best_eval": math.nan, "wall_s": 0.0,
            "trial_steps": 0}  # updates an adaptive schedule's trials took (schedsweep.train.trials), then undid


def evaluated(numbers: dict[str, Any], eval_loss: float) -> None:
    """Record one evaluation: the last eval loss, and the best finite one so far."""
    numbers["eval_loss"] = eval_loss
    if math.isfinite(eval_loss):
        best = numbers["best_eval"]
        numbers["best_eval"] = eval_loss if not math.isfinite(best) else min(best, eval_loss)


def finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def losses(numbers: dict[str, Any]) -> dict[str, float | None]:
    """The status fields of the numbers: NaN and infinities become None (status.json holds no NaN)."""
    return {"final_loss": finite(numbers["loss"]), "final_eval_loss": finite(numbers["eval_loss"]),
            "best_eval_loss": finite(numbers["best_eval"])}
