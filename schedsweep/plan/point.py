"""One grid point -> one Run: the top-level keys checked, the budget bound to steps, the optimizer's LR
scaled, and the spec hashed into the run's content id (schedsweep.plan.identity)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schedsweep import schedules
from schedsweep.errors import ConfigError
from schedsweep.plan.identity import Identifier
from schedsweep.train import script

TOP_LEVEL_KEYS = (
    "task", "optimizer", "schedule", "executor", "full_steps", "budget", "seed", "grad_clip", "eval_every",
    "checkpoint_every", "checkpoint_minutes", "share_prefix", "precision", "accumulate", "compile", "log_every",
)
OPTIONAL_KEYS = ("lr_mult",)  # a config.yaml of the user's own may omit them

@dataclass(frozen=True)
class Run:
    id: str
    spec: dict[str, Any]  # hashed into the id
    labels: dict[str, Any]  # task/optimizer/schedule names, budget, steps, lr, seed, swept values
    log: dict[str, Any]  # log intervals: never change the result
    identity: dict[str, Any] = field(default_factory=dict)  # the normalised spec the id hashes
    aliases: tuple[str, ...] = ()  # other schedule names whose grid points are this run (planned once)

    def record(self) -> dict[str, Any]:
        record = {"id": self.id, "spec": self.spec, "identity": self.identity, "labels": self.labels, "log": self.log}
        return record | ({"aliases": list(self.aliases)} if self.aliases else {})

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Run":
        return cls(record["id"], record["spec"], record["labels"], record["log"], record.get("identity") or {},
                   tuple(record.get("aliases") or ()))


def budget_steps(budget: Any, full_steps: Any) -> int:
    """Steps of a budget: a fraction of full_steps in (0, 1] rounded half up, or an integer >= 2 of absolute steps.

    Either way at least 2 steps: a 1-step run has no schedule to compare.
    """
    if isinstance(full_steps, bool) or not isinstance(full_steps, int) or full_steps < 1:
        raise ConfigError(f"full_steps must be an integer >= 1 (the steps of the 100% budget); got {full_steps!r}.")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)):
        raise ConfigError(f"budget must be a number; got {budget!r}.")
    if isinstance(budget, int) and budget >= 2:
        return budget
    if not 0 < budget <= 1:
        raise ConfigError(
            f"budget {budget!r} is not allowed: give a fraction of full_steps in (0, 1] "
            "(e.g. 0.25) or an integer number of steps >= 2 (e.g. 500)."
        )
    steps = int(budget * full_steps + 0.5)
    if steps < 2:
        raise ConfigError(
            f"budget {budget!r} of full_steps={full_steps} rounds to {steps} step(s); a run needs at least 2. "
            f"Use a budget >= {2 / full_steps:.3g} (or an integer number of steps >= 2), or a larger full_steps."
        )
    return steps


def make_run(cfg: dict[str, Any], names: dict[str, str], swept: dict[str, Any], identifier: Identifier) -> Run:
    unknown = sorted(set(cfg) - set(TOP_LEVEL_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown top-level key(s) {', '.join(unknown)}. Valid keys: {', '.join(TOP_LEVEL_KEYS + OPTIONAL_KEYS)}, sweep."
        )
    missing = [k for k in TOP_LEVEL_KEYS if k not in cfg and k != "share_prefix"]  # optional: true by default
    if missing:
        raise ConfigError(f"the config lacks {', '.join(missing)} (see the built-in conf/config.yaml).")
    seed, eval_every, clip = cfg["seed"], cfg["eval_every"], cfg["grad_clip"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0; got {seed!r}.")
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise ConfigError(f"eval_every must be an integer >= 1; got {eval_every!r}.")
    for key in ("grad_clip", "checkpoint_every", "checkpoint_minutes"):
        value = cfg[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ConfigError(f"{key} must be null or a number > 0; got {value!r}.")
    for section in ("task", "optimizer", "schedule"):
        if not isinstance(cfg[section], dict):
            raise ConfigError(f"'{section}' must be a config section (pick one with {section}=NAME); got {cfg[section]!r}.")
    steps = budget_steps(cfg["budget"], cfg["full_steps"])
    scale = _scale_keys(cfg)
    shape = without_labels(cfg["schedule"])
    optimizer = _scaled(cfg["optimizer"], cfg.get("lr_mult", 1.0))
    spec = {"task": cfg["task"], "optimizer": optimizer, "schedule": shape, "steps": steps, "seed": seed, "grad_clip": clip} | scale
    spec = script.script_identity(spec)  # a script task: the digests of the files its command names
    labels = {
        "task": names.get("task", "custom"),
        "optimizer": names.get("optimizer", "custom"),
        "schedule": names.get("schedule", "custom"),
        "budget": cfg["budget"],
        "steps": steps,
        "lr": optimizer.get("lr"),
        "seed": seed,
        "axes": swept,
    }
    log = {"eval_every": eval_every, "checkpoint_every": cfg["checkpoint_every"], "checkpoint_minutes": cfg["checkpoint_minutes"],
           "log_every": cfg["log_every"]}
    digest, identity = identifier.id_and_identity(spec)
    return Run(digest, spec, labels, log, identity)


SCALE_DEFAULTS = {"precision": "fp32", "accumulate": 1, "compile": False}


def _scale_keys(cfg: dict[str, Any]) -> dict[str, Any]:
    """precision, accumulate and compile, checked; only those off their default join the spec (and the id),
    so a run at the defaults keeps the id it had before these keys existed."""
    precision, accumulate, compile_, log_every = cfg["precision"], cfg["accumulate"], cfg["compile"], cfg["log_every"]
    if precision not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"precision must be fp32, bf16 or fp16; got {precision!r}.")
    for key, value in (("accumulate", accumulate), ("log_every", log_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be an integer >= 1; got {value!r}.")
    if not isinstance(compile_, bool):
        raise ConfigError(f"compile must be true or false; got {compile_!r}.")
    values = {"precision": precision, "accumulate": accumulate, "compile": compile_}
    return {k: v for k, v in values.items() if v != SCALE_DEFAULTS[k]}


def without_labels(schedule: dict[str, Any]) -> dict[str, Any]:
    """The schedule section without its label keys; the same object when it has none (identities are cached by object)."""
    if not any(k in schedule for k in schedules.LABEL_KEYS):
        return schedule
    return {k: v for k, v in schedule.items() if k not in schedules.LABEL_KEYS}


def _scaled(optimizer: dict[str, Any], scale: Any) -> dict[str, Any]:
    """The optimizer section with lr = lr * lr_mult (not a param group's lr_scale: this one sets the peak itself).

    A study over several tasks sweeps lr_mult (multipliers of each task's own peak LR, which
    conf/tuned/TASK_OPTIMIZER.yaml sets) where one absolute LR grid would fit no task. The run's
    spec and label hold the product, so a scaled run and the same LR given directly are one run. A
    `rest:` optimizer (e.g. muon's AdamW) is scaled alike: one schedule, one multiplier.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ConfigError(f"lr_mult (a multiplier of optimizer.lr) must be a number > 0; got {scale!r}.")
    lr = optimizer.get("lr")
    if scale == 1 or isinstance(lr, bool) or not isinstance(lr, (int, float)):
        return optimizer  # optimizers.resolve names a bad lr
    scaled = {**optimizer, "lr": float(f"{lr * scale:.6g}")}  # 0.1 * 3 is 0.30000000000000004
    if isinstance(optimizer.get("rest"), dict):
        scaled["rest"] = _scaled(optimizer["rest"], scale)
    return scaled
