"""One grid point -> one Run: the top-level keys checked, the budget bound to steps, the optimizer's LR
scaled, and the spec hashed into the run's content id (schedsweep.plan.identity)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from schedsweep import schedules, typed
from schedsweep.errors import ConfigError
from schedsweep.plan import options, units
from schedsweep.plan.identity import Identifier
from schedsweep.results import pruning
from schedsweep.train import script
from schedsweep.typed import choice, flag, number, text


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


@dataclass(frozen=True)
class RunKeys:
    """The top-level keys of conf/config.yaml that shape one run, typed once (the sections task, optimizer,
    schedule and executor, and full_steps and budget, have owners of their own). Defaults apply to a
    config.yaml of the user's own that omits a key."""

    seed: int = number(0, low=0, doc="model init and batch order")
    lr_mult: float = number(1.0, low=0, kind=float, above=True, aside="a multiplier of optimizer.lr",
                            doc="the peak LR is optimizer.lr x lr_mult: sweep it to tune several tasks' LRs at once")
    grad_clip: float | None = number(None, low=0, kind=float, null=True, above=True,
                                     doc="clip the global L2 gradient norm to this value; null = no clipping")
    eval_every: int = number(50, low=1, doc="evaluate every N steps and after the last one (a log interval: not in the run id)")
    checkpoint_every: int | None = number(None, low=1, null=True, doc="also checkpoint every N steps; null = by time only")
    checkpoint_minutes: float | None = number(10.0, low=0, kind=float, null=True, above=True,
                                              doc="checkpoint at least this often, so a killed run loses at most this much work")
    precision: str = choice("fp32", ("fp32", "bf16", "fp16"), doc="fp32, bf16 (autocast) or fp16 (autocast + loss scaling)")
    accumulate: int = number(1, low=1, doc="micro-batches per optimizer step (the logged loss is their mean)")
    compile: bool = flag(False, doc="torch.compile the model for training")
    log_every: int = number(10, low=1, doc="on CUDA, read the step metrics every N steps (one synchronisation); not in the run id")
    average: str = choice("none", options.AVERAGES, doc="also keep an average of the weights and evaluate it at each evaluation as "
                          "eval_loss_<average>: ema or lawa (docs/guide/cooldowns.md); in the run id only when not none")
    ema_decay: float = number(0.99, low=0, kind=float, above=True, doc="average=ema: a <- decay a + (1 - decay) w after each update (< 1)")
    lawa_k: int = number(5, low=1, doc="average=lawa: the mean of the last k kept weights")
    lawa_every: int = number(20, low=1, doc="average=lawa: keep the weights after every N-th update (in steps, at every budget)")
    init_from: str | None = text(doc="start every run from this checkpoint ({'model': ..., 'optimizer': ...} state dicts, "
                                     "schedsweep.train.init_from); the id holds its content digest and init_step")
    init_step: int = number(0, low=0, doc="init_from: the checkpoint's step; runs train init_step..T-1 of their budget T")
    budget_unit: str = choice("steps", units.UNITS, doc="steps: budget is a fraction of full_steps or steps; tokens or samples: "
                              "an amount of them, bound to steps by tokens_per_step / samples_per_step (schedsweep.plan.units)")
    tokens_per_step: int | None = number(None, low=1, null=True, doc="budget_unit=tokens: tokens per optimizer step; "
                                         "null = task.batch_size x task.context x accumulate")
    samples_per_step: int | None = number(None, low=1, null=True, doc="budget_unit=samples: samples per optimizer step; "
                                          "null = task.batch_size x accumulate")


@dataclass(frozen=True)
class SweepKeys:
    """Top-level keys that shape the sweep, not a run: never in a run's spec or id (schedsweep.plan.grid)."""

    prune_lr: int = number(0, low=0, doc="successive halving over the peak LR with this ETA (>= 2; 0 = off): each larger "
                                          "budget runs the best 1/ETA of the LRs of the one below (schedsweep.sweep.prune)")
    prune_rule: str = choice(pruning.DEFAULT_RULE, pruning.RULES, doc="prune_lr: which LRs go on to the next budget: halve "
                             "(the best 1/ETA, at least 1), neighbours (at least 2, and the best's neighbours), top, pair, "
                             "extrap, extrap-pair, extrap-halve (schedsweep.results.pruning)")


SECTIONS = ("task", "optimizer", "schedule", "executor")
REQUIRED = (*SECTIONS, "full_steps", "budget")
OTHER_KEYS = ("share_prefix", "prune_lr", "prune_rule", "keep_trunk")  # the sweep's, not a run's (schedsweep.plan.grid)


def make_run(cfg: dict[str, Any], names: dict[str, str], swept: dict[str, Any], identifier: Identifier,
             user_keys: frozenset[str] = frozenset()) -> Run:
    """The run of one grid point. `user_keys`: the keys set or swept on the command line or in a sweep block
    (a script task keeps only the optimizer keys among them: schedsweep.train.script.sweep_optimizer)."""
    valid = (*REQUIRED, *(f.name for f in dataclasses.fields(RunKeys)), *OTHER_KEYS)
    unknown = sorted(set(cfg) - set(valid))
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {', '.join(unknown)}. Valid keys: {', '.join(valid)}, sweep.")
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise ConfigError(f"the config lacks {', '.join(missing)} (see the built-in conf/config.yaml).")
    for section in ("task", "optimizer", "schedule"):
        if not isinstance(cfg[section], dict):
            raise ConfigError(f"'{section}' must be a config section (pick one with {section}=NAME); got {cfg[section]!r}.")
    keys = typed.parse(RunKeys, {k: v for k, v in cfg.items() if k not in (*REQUIRED, *OTHER_KEYS)}, "", "the config")
    steps, budget, per_step = ((budget_steps(cfg["budget"], cfg["full_steps"]), cfg["budget"], None)
                               if keys.budget_unit == "steps" else units.bind_keys(cfg, keys))
    scale = {k: v for k, v in (("precision", keys.precision), ("accumulate", keys.accumulate), ("compile", keys.compile))
             if v != SCALE_DEFAULTS[k]}  # only off their defaults in the spec: a run at the defaults keeps its old id
    shape = without_labels(cfg["schedule"])
    optimizer = _scaled(cfg["optimizer"], keys.lr_mult)
    own = script.sweep_optimizer(optimizer, user_keys) if script.is_script(cfg["task"]) else None
    optimizer = optimizer if own is None else own
    spec = {"task": cfg["task"], "optimizer": optimizer, "schedule": shape, "steps": steps, "seed": keys.seed,
            "grad_clip": keys.grad_clip} | scale
    spec |= options.spec_parts(keys, cfg["task"], steps)  # average, init: only when set (schedsweep.plan.options)
    spec = script.script_identity(spec)  # a script task: the digests of the files its command names
    labels = {
        "task": names.get("task", "custom"),
        "optimizer": names.get("optimizer", "custom") if own is None else script.OWN,
        "schedule": names.get("schedule", "custom"),
        "budget": budget,
        "steps": steps,
        "lr": optimizer.get("lr"),
        "seed": keys.seed,
        "axes": swept,
    } | ({"per_step": per_step} if per_step else {})
    log = {"eval_every": keys.eval_every, "checkpoint_every": keys.checkpoint_every,
           "checkpoint_minutes": keys.checkpoint_minutes, "log_every": keys.log_every}
    digest, identity = identifier.id_and_identity(spec)
    return Run(digest, spec, labels, log, identity)


SCALE_DEFAULTS = {"precision": "fp32", "accumulate": 1, "compile": False}


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
    lr = optimizer.get("lr")
    if scale == 1 or isinstance(lr, bool) or not isinstance(lr, (int, float)):
        return optimizer  # optimizers.resolve names a bad lr
    scaled = {**optimizer, "lr": float(f"{lr * scale:.6g}")}  # 0.1 * 3 is 0.30000000000000004
    if isinstance(optimizer.get("rest"), dict):
        scaled["rest"] = _scaled(optimizer["rest"], scale)
    return scaled
