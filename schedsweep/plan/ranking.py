"""What a study file says about its report: the metric each task is ranked by.

    report:
      metric: eval_error        # what `schedsweep report` ranks by when --metric is not given
      metric_by_task:           # tasks ranked by another metric (REX: test error, loss for its VAE)
        quadratic: eval_loss
        regression: eval_loss

The plan takes the `report:` block out of every run's config (it changes no run) and writes it into
sweep.yaml, where `schedsweep report` reads it (schedsweep.results.report.task_metric).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schedsweep.errors import ConfigError

KEY = "report"


@dataclass(frozen=True)
class RankBy:
    metric: str = "final_eval_loss"
    metric_by_task: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any) -> "RankBy":
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ConfigError(f"'{KEY}:' must be a mapping with metric and metric_by_task; got {raw!r}.")
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"{KEY} has no key(s) {', '.join(unknown)}. Valid: metric, metric_by_task.")
        metric = raw.get("metric", cls.metric)
        by_task = raw.get("metric_by_task") or {}
        if not isinstance(metric, str) or not isinstance(by_task, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in by_task.items()):
            raise ConfigError(f"{KEY}.metric must be a metric name and {KEY}.metric_by_task a mapping task: metric; "
                              f"got {raw!r}.")
        return cls(metric, dict(by_task))

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "metric_by_task": dict(self.metric_by_task)}
