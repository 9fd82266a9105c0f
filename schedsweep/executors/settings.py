"""The executor settings, typed once: one frozen dataclass per kind, parsed from conf/executor/*.yaml and
the command line's `executor.*` overrides.

Defaults live in the dataclass fields (conf/executor/*.yaml repeats them with comments for users, and a
test keeps the two equal). Each number field says its type, its lowest value and whether null is allowed;
messages are generated from that, so `executor.signal_delay_s=0` stays 0 (valid: signal at the limit) and
`executor.nodes=0` is refused by name instead of silently becoming 1. Code downstream reads fields,
never `dict.get(key) or default`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from schedsweep.errors import ConfigError


def _number(default: Any, *, low: float, kind: type = int, null: bool = False, above: bool = False) -> Any:
    """A number field: `kind` (int, or float which also takes ints), >= low (> low when `above`), null when `null`."""
    return field(default=default, metadata={"kind": kind, "low": low, "above": above, "null": null})


def _text() -> Any:
    return field(default=None, metadata={"kind": str, "null": True})


@dataclass(frozen=True)
class DebugSettings:
    """Every run in this process, one after another."""

    kind: str = "debug"
    threads_per_run: int | None = _number(None, low=1, null=True)  # null: every core


@dataclass(frozen=True)
class LocalSettings:
    """Reused worker processes on this machine."""

    kind: str = "local"
    max_parallel: int | None = _number(None, low=1, null=True)  # null: one per CPU core
    threads_per_run: int | None = _number(None, low=1, null=True)  # null: cores / max_parallel (at least 1)
    timeout_min: float = _number(1440.0, low=0, kind=float, above=True)
    tasks_per_node: int = _number(1, low=1)  # > 1: DistributedDataParallel over that many processes

    def parallel(self, cpus: int) -> int:
        return self.max_parallel or cpus


@dataclass(frozen=True)
class SlurmSettings:
    """Job arrays on a Slurm cluster."""

    kind: str = "slurm"
    partition: str | None = _text()
    account: str | None = _text()
    qos: str | None = _text()
    constraint: str | None = _text()
    nodes: int = _number(1, low=1)
    gpus_per_node: int = _number(0, low=0)
    tasks_per_node: int | None = _number(None, low=1, null=True)  # null: gpus_per_node, at least 1
    cpus_per_task: int = _number(1, low=1)
    mem_gb: float | None = _number(None, low=0, kind=float, null=True, above=True)
    time_min: int = _number(60, low=1)
    time_per_step_s: float | None = _number(None, low=0, kind=float, null=True, above=True)
    time_safety: float = _number(2.0, low=0, kind=float, above=True)
    time_by_budget: Mapping[Any, Any] = field(default_factory=dict)
    array_parallelism: int = _number(256, low=1)
    signal_delay_s: int = _number(60, low=0)  # 0: the signal comes at the time limit itself
    max_requeues: int = _number(3, low=0)
    setup: tuple[str, ...] = ()
    additional_parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tasks(self) -> int:
        """Processes per node: tasks_per_node, else one per GPU, at least one."""
        return self.tasks_per_node or max(1, self.gpus_per_node)

    def time_limit(self, budget: Any, steps: int) -> int:
        """Minutes for `steps` of a run at `budget`: an explicit per-budget value, else steps x
        time_per_step_s x time_safety (at least 2: Slurm may signal ~30 s early), else time_min."""
        for key in (str(budget), budget):
            if key in self.time_by_budget:
                return int(self.time_by_budget[key])
        if self.time_per_step_s is not None:
            return max(2, math.ceil(steps * self.time_per_step_s * self.time_safety / 60))
        return self.time_min


Settings = Union[DebugSettings, LocalSettings, SlurmSettings]
SCHEMAS: dict[str, type] = {"debug": DebugSettings, "local": LocalSettings, "slurm": SlurmSettings}


def parse(cfg: Mapping[str, Any] | Settings) -> Settings:
    """The settings of `cfg` (a mapping with `kind`), defaults filled; ConfigError naming the key otherwise."""
    if isinstance(cfg, tuple(SCHEMAS.values())):
        return cfg  # type: ignore[return-value]
    kind = cfg.get("kind")
    if kind not in SCHEMAS:
        raise ConfigError(f"unknown executor kind {kind!r}. Valid: {', '.join(SCHEMAS)} (conf/executor/).")
    fields = {f.name: f for f in dataclasses.fields(SCHEMAS[kind])}
    unknown = sorted(set(cfg) - set(fields))
    if unknown:
        valid = ", ".join(f"{name} (default {_default(f)!r})" for name, f in fields.items() if name != "kind")
        raise ConfigError(f"executor '{kind}' has no key(s) {', '.join(unknown)}. Valid keys: {valid}.")
    values = {key: _check(key, value, fields[key]) for key, value in cfg.items() if key != "kind"}
    return SCHEMAS[kind](**values)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _check(key: str, value: Any, f: dataclasses.Field) -> Any:
    meta = f.metadata
    if "low" in meta:
        if value is None and meta["null"]:
            return None
        kind, low = meta["kind"], meta["low"]
        number = (int,) if kind is int else (int, float)
        ok = not isinstance(value, bool) and isinstance(value, number) and (value > low if meta["above"] else value >= low)
        if not ok:
            what = "an integer" if kind is int else "a number"
            bound = f"> {low:g}" if meta["above"] else f">= {low:g}"
            raise ConfigError(f"executor.{key} must be {what} {bound}{' (or null)' if meta['null'] else ''}; got {value!r}.")
        return kind(value)
    if meta.get("kind") is str:
        if value is not None and not isinstance(value, (str, int)):
            raise ConfigError(f"executor.{key} must be a string (or null); got {value!r}.")
        return None if value is None else str(value)
    if key == "setup":
        if not isinstance(value, (list, tuple)) or not all(isinstance(line, str) for line in value):
            raise ConfigError(f"executor.setup must be a list of shell lines; got {value!r}.")
        return tuple(value)
    if not isinstance(value, Mapping):
        raise ConfigError(f"executor.{key} must be a mapping; got {value!r}.")
    return dict(value)


def as_dict(settings: Settings) -> dict[str, Any]:
    """The settings as plain data (for sweep.yaml and messages)."""
    data = dataclasses.asdict(settings)
    if "setup" in data:
        data["setup"] = list(data["setup"])
    return data
