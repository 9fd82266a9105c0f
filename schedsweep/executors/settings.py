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

from schedsweep import typed
from schedsweep.errors import ConfigError
from schedsweep.typed import number, text


@dataclass(frozen=True)
class DebugSettings:
    """executor=debug: every run in this process, one after another (for debugging a task or a schedule)."""

    kind: str = "debug"
    threads_per_run: int | None = number(None, low=1, null=True, doc="torch threads; null = every core")


@dataclass(frozen=True)
class LocalSettings:
    """executor=local: runs in reused worker processes on this machine."""

    kind: str = "local"
    max_parallel: int | None = number(None, low=1, null=True, doc="runs at once; null = one per CPU core")
    threads_per_run: int | None = number(None, low=1, null=True, doc="torch threads per run; null = cores / max_parallel (at least 1)")
    timeout_min: float = number(1440.0, low=0, kind=float, above=True,
                                doc="a run still going after this checkpoints and stops as interrupted; the next launch resumes it")
    tasks_per_node: int = number(1, low=1, doc="processes per run; > 1 trains with DistributedDataParallel (gloo on CPU)")
    gpus: Any = field(default="auto", metadata={"doc": "auto (every visible CUDA device; none on a CPU machine), a count, "
                                                       "a list of device ids, or null (no pinning): each worker is pinned "
                                                       "to its device with CUDA_VISIBLE_DEVICES"})
    runs_per_gpu: int = number(1, low=1, doc="runs sharing one device at once")

    def parallel(self, cpus: int, devices: int = 0) -> int:
        """Runs at once: max_parallel, else one per CPU core; with devices, at most devices x runs_per_gpu
        / tasks_per_node (the default then), so that no device takes more than runs_per_gpu runs."""
        if not devices:
            return self.max_parallel or cpus
        slots = devices * self.runs_per_gpu // self.tasks_per_node
        return min(self.max_parallel or slots, slots)


@dataclass(frozen=True)
class SlurmSettings:
    """executor=slurm: job arrays on a Slurm cluster, grouped by time limit and cut at MaxArraySize."""

    kind: str = "slurm"
    partition: str | None = text("null = the cluster's default partition")
    account: str | None = text("sbatch --account")
    qos: str | None = text("sbatch --qos")
    constraint: str | None = text("sbatch --constraint")
    nodes: int = number(1, low=1, doc="nodes per run")
    gpus_per_node: int = number(0, low=0, doc="GPUs per node (sbatch --gpus-per-node)")
    tasks_per_node: int | None = number(None, low=1, null=True, doc="processes per node; null = gpus_per_node (at least 1); > 1 trains with DDP")
    cpus_per_task: int = number(1, low=1, doc="CPUs per process, also its torch threads")
    mem_gb: float | None = number(None, low=0, kind=float, null=True, above=True, doc="memory per node; null = the partition's default")
    time_min: int = number(60, low=1, doc="time limit per run (minutes) unless time_by_budget or time_per_step_s applies")
    time_per_step_s: float | None = number(None, low=0, kind=float, null=True, above=True,
                                           doc="seconds per step: the limit becomes steps x this x time_safety")
    time_safety: float = number(2.0, low=0, kind=float, above=True, doc="factor on time_per_step_s")
    time_by_budget: Mapping[Any, Any] = field(default_factory=dict, metadata={"doc": "explicit minutes per budget, e.g. {0.1: 10, 1.0: 90}"})
    array_parallelism: int = number(256, low=1, doc="runs of this sweep running at once, shared between its arrays (%k)")
    signal_delay_s: int = number(60, low=0, doc="SIGUSR2 this long before the time limit (0 = at the limit): checkpoint and requeue")
    max_requeues: int = number(3, low=0, doc="requeues after a time limit or preemption before a run counts as failed")
    setup: tuple[str, ...] = field(default=(), metadata={"doc": "shell lines before the run, e.g. [\"module load cuda\"]"})
    additional_parameters: Mapping[str, Any] = field(default_factory=dict, metadata={"doc": "any other sbatch option, e.g. {hold: true}"})
    runs_per_job: int = number(1, low=1, doc="runs per job: each array task trains this many in turn (one per GPU at once), "
                                              "pulled through their claims; its time limit is their limits summed per GPU")

    @property
    def tasks(self) -> int:
        """Processes per node: tasks_per_node, else one per GPU, at least one; one in a packed job (its runs
        are single-process, one per GPU, schedsweep.executors.packed)."""
        if self.runs_per_job > 1:
            return 1
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
    values = {k: v for k, v in cfg.items() if k != "kind"}
    for key in ("setup",):
        if key in values and (not isinstance(values[key], (list, tuple)) or not all(isinstance(x, str) for x in values[key])):
            raise ConfigError(f"executor.setup must be a list of shell lines; got {values[key]!r}.")
    for key in ("time_by_budget", "additional_parameters"):
        if key in values and not isinstance(values[key], Mapping):
            raise ConfigError(f"executor.{key} must be a mapping; got {values[key]!r}.")
    if kind == "local" and "gpus" in values:
        from schedsweep.executors import devices

        values["gpus"] = devices.check(values["gpus"])
    settings = typed.parse(SCHEMAS[kind], values, "executor.", f"executor '{kind}'")
    if isinstance(settings, SlurmSettings) and settings.runs_per_job > 1 and (
            settings.nodes > 1 or (settings.tasks_per_node or 1) > 1):
        raise ConfigError(f"executor.runs_per_job={settings.runs_per_job} packs single-process runs (one per GPU) into a job; "
                          f"it cannot be combined with executor.nodes={settings.nodes} or "
                          f"executor.tasks_per_node={settings.tasks_per_node} (DDP runs): use runs_per_job=1 for those.")
    if isinstance(settings, SlurmSettings):
        settings = dataclasses.replace(settings, setup=tuple(settings.setup), time_by_budget=dict(settings.time_by_budget),
                                       additional_parameters=dict(settings.additional_parameters))
    return settings


def as_dict(settings: Settings) -> dict[str, Any]:
    """The settings as plain data (for sweep.yaml and messages)."""
    data = dataclasses.asdict(settings)
    for key in ("setup", "gpus"):
        if isinstance(data.get(key), tuple):
            data[key] = list(data[key])
    return data
