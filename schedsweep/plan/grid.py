"""The plan: every grid point as a frozen, fully resolved run with a content-addressed id.

A run's `spec` is everything that changes the result (task, optimizer, schedule shape, steps, seed,
clipping, and precision, accumulate and compile when not at their defaults) as the config spelled it: what the run is built from and what the user set. Its id hashes
the spec's normalised `identity` (defaults filled and dropped, numbers by value, files by contents, a
spec version: schedsweep.plan.identity), so equivalent spellings are one run, in every process and on
every machine. Labels (names, swept values) and log intervals are outside the spec. Budgets are
bound here: a fraction of `full_steps` becomes the run's own step count, and the schedule is re-fit
to it (a 10% run is a fresh run with its own full decay, as in REX).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from schedsweep import schedules, tasks, typed
from schedsweep.train import optimizers, script
from schedsweep.plan.config import Axis, Composer, check_option, composer, interpolated
from schedsweep.errors import ConfigError
from schedsweep.plan.identity import Identifier
from schedsweep.plan import per_task, ranking
from schedsweep.plan.per_task import set_path as _with
from schedsweep.plan.point import Run, SweepKeys, make_run, without_labels
from schedsweep.plan.ranking import RankBy

NOT_SWEEPABLE = ("executor", "full_steps", "share_prefix", "prune_lr", "prune_rule", "budget_unit", "keep_trunk")
SWEEP_KEYS = ("sweep", "refinement", ranking.KEY, per_task.KEY)  # describe the sweep, not a run: removed from every run's config


@dataclass(frozen=True)
class Plan:
    name: str
    runs: tuple[Run, ...]
    axes: tuple[Axis, ...]
    base: dict[str, Any]  # the composed config before any sweep value is set
    overrides: tuple[str, ...]
    executor: dict[str, Any]
    refinement: dict[str, Any] | None = None  # the two-stage refinement study's settings (schedsweep.plan.study)
    rank_by: RankBy = field(default_factory=RankBy)  # the study's report metric per task (schedsweep.plan.ranking)
    duplicates: int = 0  # grid points that resolved to an already planned run
    merged: dict[str, int] = field(default_factory=dict)  # "linear_twin = linear" -> grid points planned once
    counts: dict[str, int] = field(default_factory=dict)  # values per axis
    share_prefix: bool = True  # train prefixes shared across budgets once (schedsweep.sharing.branching); not in run ids
    prune_lr: int = 0  # successive halving over the LR axis with this ETA; 0 = off (schedsweep.sweep.prune)
    prune_rule: str = "halve"  # which LRs prune_lr keeps (schedsweep.results.pruning)
    keep_trunk: str = "none"  # none | forks | every:FRACTION: forks kept for later launches (schedsweep.sharing.kept)


def make_plan(
    overrides: Sequence[str],
    *,
    config_dir: Path | None = None,
    config_name: str = "config",
    name: str | None = None,
    generated: Sequence[Path] = (),
    check_imports: bool = True,
) -> Plan:
    """Compose, expand and validate the grid.

    Every check that needs no import of a task module or of torch always runs (schedules at every
    budget, budgets, top-level keys, optimizer keys and lr > 0; the run ids read class defaults from
    source). `check_imports` adds those that import: each distinct task is resolved (its methods,
    signature and check_params) and each distinct optimizer config is built on a dummy parameter.
    `launch --dry-run` leaves them out: importing torch alone costs ~4 s of CPU.
    """
    with composer(config_dir, generated) as c:
        parsed = c.parse(overrides)
        fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
        cli_axes = [_axis_from_override(c, o) for o in parsed if o.is_sweep_override()]
        base, base_names = c.compose(fixed, config_name)
        given = {o.key_or_group for o in parsed}
        refinement = base.pop("refinement", None)
        rank_by = RankBy.parse(base.pop(ranking.KEY, None))
        by_task = per_task.parse(base.pop(per_task.KEY, None))
        axes = cli_axes + _axes_from_sweep_block(c, base.pop("sweep", None), given)
        for axis in axes:
            if axis.key in NOT_SWEEPABLE:
                raise ConfigError(f"'{axis.key}' cannot be swept: one sweep has one {axis.key}.")
            if not axis.values:
                raise ConfigError(f"the sweep has zero runs: axis '{axis.key}' has no values.")
            if axis.group:
                for value in axis.values:
                    check_option(c, axis.key, str(value))
        user_keys = frozenset(given | {a.key.lstrip("+~") for a in axes})
        runs, merged = _expand(c, fixed, axes, config_name, (base, base_names), user_keys, by_task)
    _validate(runs, check_imports)
    return Plan(
        name=name or default_name(runs),
        runs=tuple(runs),
        axes=tuple(axes),
        base=base,
        overrides=tuple(overrides),
        executor=base.get("executor", {}),
        refinement=refinement,
        rank_by=rank_by,
        duplicates=sum(merged.values()),
        merged=merged,
        counts={a.key: len(a.values) for a in axes},
        share_prefix=_share_prefix(base),
        prune_lr=_prune_lr(base),
        prune_rule=typed.parse(SweepKeys, {k: base[k] for k in ("prune_rule",) if k in base}, "", "the config").prune_rule,
        keep_trunk=_keep_trunk(base),
    )


def _prune_lr(base: dict[str, Any]) -> int:
    """prune_lr, typed (SweepKeys): 0 (off) or an ETA >= 2. Shared prefixes stay: a trunk trains up to the forks of
    the budgets decided so far (schedsweep.sweep.prune.limit)."""
    eta = typed.parse(SweepKeys, {k: base[k] for k in ("prune_lr",) if k in base}, "", "the config").prune_lr
    if eta == 1:
        raise ConfigError("prune_lr must be 0 (off) or an integer >= 2 (keep the best 1/ETA of the LRs); got 1.")
    return eta


def _keep_trunk(base: dict[str, Any]) -> str:
    from schedsweep.sharing.kept import KeepTrunk

    KeepTrunk.parse(base.get("keep_trunk", "none"))  # checked now; the launch parses it again
    return str(base.get("keep_trunk", "none"))


def _share_prefix(base: dict[str, Any]) -> bool:
    value = base.get("share_prefix", True)
    if not isinstance(value, bool):
        raise ConfigError(f"share_prefix must be true or false; got {value!r}.")
    return value


def _axis_from_override(c: Composer, override: Any) -> Axis:
    if override.is_interval_sweep():
        raise ConfigError(
            f"'{override.input_line}': interval() is a continuous range and cannot be gridded; "
            "use a list (a,b,c) or range(start, stop, step)."
        )
    key = override.key_or_group
    prefix = "++" if override.is_force_add() else "+" if override.is_add() else ""
    return Axis(key, tuple(override.sweep_iterator()), c.is_group(key), prefix)


def _axes_from_sweep_block(c: Composer, block: Any, given: set[str]) -> list[Axis]:
    if block is None:
        return []
    if not isinstance(block, dict):
        raise ConfigError(f"'sweep:' must map keys to lists of values; got {block!r}.")
    axes = []
    for key, values in block.items():
        if key in given:  # the command line overrides the YAML sweep of the same key
            continue
        if isinstance(values, list):
            axis_values: tuple[Any, ...] = tuple(values)
        elif isinstance(values, str):
            (parsed,) = c.parse([f"{key}={values}"])
            axis_values = tuple(parsed.sweep_iterator()) if parsed.is_sweep_override() else (parsed.value(),)
        elif isinstance(values, dict):
            raise ConfigError(f"sweep.{key} must be a list of values or a sweep string; got a mapping.")
        else:
            axis_values = (values,)
        axes.append(Axis(str(key), axis_values, c.is_group(str(key))))
    return axes


def _expand(
    c: Composer, fixed: list[str], axes: list[Axis], config_name: str, base: tuple[dict[str, Any], dict[str, str]],
    user_keys: frozenset[str] = frozenset(),
    blocks: dict[str, dict[str, Any]] | None = None,  # the study's per_task keys (schedsweep.plan.per_task)
) -> tuple[list[Run], dict[str, int]]:
    group_axes = [a for a in axes if a.group]
    value_axes = [a for a in axes if not a.group]
    runs: dict[str, Run] = {}
    merged: Counter[str] = Counter()
    identifier = Identifier(tasks.identity_params, optimizers.identity_params)
    blocks = blocks or {}
    given = set(user_keys)  # a key the user set or swept wins over a per_task one
    used: set[tuple[str, str]] = set()
    planned_tasks: set[str] = set()
    for choice, (cfg, names) in zip(
        itertools.product(*(a.values for a in group_axes)), _group_configs(c, fixed, group_axes, config_name, base)
    ):
        for axis in value_axes:
            _check_settable(cfg, axis, names)
        resolve = interpolated(cfg)
        if isinstance(cfg.get("schedule"), dict):  # once per group combination, not once per run
            cfg = {**cfg, "schedule": without_labels(cfg["schedule"])}
        for values in itertools.product(*(a.values for a in value_axes)):
            point = cfg
            for axis, value in zip(value_axes, values):
                point = _with(point, axis.key.split("."), value)
            if blocks:
                planned_tasks.add(names.get("task", "custom"))
                point = per_task.apply(point, names.get("task", "custom"), blocks, given, used)
            if resolve:
                point = _resolve(point)
            swept = {a.key: v for a, v in zip(group_axes, choice)} | {a.key: v for a, v in zip(value_axes, values)}
            run = make_run(point, names, swept, identifier, user_keys)
            if run.id in runs:
                runs[run.id], what = _merge(runs[run.id], run)
                merged[what] += 1
            else:
                runs[run.id] = run
    per_task.check_used(blocks, planned_tasks, used, given)
    return list(runs.values()), dict(merged)


def _merge(kept: Run, again: Run) -> tuple[Run, str]:
    """A grid point whose run is already planned: the kept run, and what the two differ in ("b = a").

    When they differ only in the schedule's name (a copy of linear.yaml under another name), the kept
    run lists that name in `aliases`, so the report can list the schedule as the same as the kept one
    (schedsweep.results.identical) instead of letting it vanish.
    """
    names = [k for k in ("task", "optimizer", "schedule") if again.labels[k] != kept.labels[k]]
    swept = [k for k, v in again.labels["axes"].items() if k not in names and kept.labels["axes"].get(k) != v]
    if names == ["schedule"] and not swept:
        name = str(again.labels["schedule"])
        if name not in kept.aliases:
            kept = dataclasses.replace(kept, aliases=(*kept.aliases, name))
        return kept, f"{name} = {kept.labels['schedule']}"
    if not names and not swept:
        return kept, "the same grid point twice"
    left = ", ".join([*(f"{k}={again.labels[k]}" for k in names), *(f"{k}={again.labels['axes'][k]}" for k in swept)])
    right = ", ".join([*(f"{k}={kept.labels[k]}" for k in names), *(f"{k}={kept.labels['axes'].get(k)}" for k in swept)])
    return kept, f"{left} = {right}"


def _group_configs(
    c: Composer,
    fixed: list[str],
    group_axes: list[Axis],
    config_name: str,
    base: tuple[dict[str, Any], dict[str, str]],  # composed from `fixed` alone, without its sweep block
) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """The composed config of every combination of group choices, in itertools.product order.

    A compose costs ~45 ms. An option that only fills its own section (the usual case) is composed
    once and its section swapped into each combination: sum, not product, of the option counts. Options
    that reach beyond their section, and groups that select a file together (conf/config.yaml's
    `optional tuned: ${task}_${optimizer}` sets full_steps and optimizer.lr per pair) are *coupled*:
    every combination of the coupled axes is composed (10 for 5 tasks x 2 optimizers), the others
    swapped in. If a coupled combination changes
    an independent axis's section, or an axis is nested (`a/b`), every combination is composed.
    """
    base_cfg, base_names = base
    keys = {a.key for a in group_axes}
    options: dict[str, list[tuple[dict[str, Any], dict[str, str]]]] = {}
    together = c.coupled_groups(config_name) & keys  # swept together: each pair has its own file
    coupled = together if len(together) > 1 else set()
    for axis in group_axes:
        if "/" in axis.key:
            yield from _every_combination(c, fixed, group_axes, config_name)
            return
        options[axis.key] = [_without_sweep(c.compose([*fixed, axis.override(v)], config_name)) for v in axis.values]
        for cfg, _ in options[axis.key]:
            beyond = {k for k in cfg.keys() | base_cfg.keys() if k != axis.key and cfg.get(k) != base_cfg.get(k)}
            if beyond:
                coupled |= {axis.key} | (beyond & keys)
    joint = [a for a in group_axes if a.key in coupled]
    composed = {}
    for choice in itertools.product(*(a.values for a in joint)):
        cfg, names = _without_sweep(c.compose(fixed + [a.override(v) for a, v in zip(joint, choice)], config_name))
        if any(cfg.get(a.key) != base_cfg.get(a.key) for a in group_axes if a.key not in coupled):
            yield from _every_combination(c, fixed, group_axes, config_name)
            return
        composed[choice] = (cfg, names)
    for combo in itertools.product(*(range(len(a.values)) for a in group_axes)):
        cfg, names = composed[tuple(a.values[i] for a, i in zip(group_axes, combo) if a.key in coupled)]
        cfg, names = dict(cfg), dict(names)
        for axis, i in zip(group_axes, combo):
            if axis.key not in coupled:
                section, option_names = options[axis.key][i]
                cfg[axis.key], names[axis.key] = section[axis.key], option_names[axis.key]
        yield cfg, names


def _every_combination(
    c: Composer, fixed: list[str], group_axes: list[Axis], config_name: str
) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    for combo in itertools.product(*(a.values for a in group_axes)):
        yield _without_sweep(c.compose(fixed + [a.override(v) for a, v in zip(group_axes, combo)], config_name))


def _without_sweep(composed: tuple[dict[str, Any], dict[str, str]]) -> tuple[dict[str, Any], dict[str, str]]:
    cfg, names = composed
    return {k: v for k, v in cfg.items() if k not in SWEEP_KEYS}, names


def _check_settable(cfg: dict[str, Any], axis: Axis, names: dict[str, str]) -> None:
    *parents, leaf = axis.key.split(".")
    node: Any = cfg
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    where = ", ".join(f"{g}={o}" for g, o in sorted(names.items()))
    if not isinstance(node, dict):
        raise ConfigError(f"cannot sweep '{axis.key}': '{'.'.join(parents)}' is not a section of the config ({where}).")
    if axis.prefix == "" and leaf not in node:
        valid = ", ".join(sorted(node)) or "(none)"
        raise ConfigError(
            f"cannot sweep '{axis.key}': no such key in the config ({where}). Keys there: {valid}. "
            f"To add a new key use +{axis.key}=..."
        )


def _resolve(cfg: dict[str, Any]) -> dict[str, Any]:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        raise ConfigError(f"cannot resolve an interpolation: {e}".splitlines()[0]) from None


def _validate(runs: Iterable[Run], check_imports: bool) -> None:
    """Check each distinct task, optimizer and (schedule, steps) once: plans repeat them thousands of times."""
    seen: set[tuple[str, int]] = set()
    for run in runs:
        script_task = script.is_script(run.spec["task"])
        own_optimizer = script_task and run.labels["optimizer"] == script.OWN  # the script's own: nothing to check
        if script_task and run.spec["schedule"].get("shape") == "autolrs":
            raise ConfigError("schedule autolrs tries LRs and rewinds the model during training, which only the "
                              "built-in loop can do: use it with a built-in or Python task, not task=script.")
        checks = [
            (f"schedule@{run.spec['steps']}", "schedule", lambda s: schedules.check(s, run.spec["steps"], run.labels["schedule"])),
            *([] if own_optimizer else [("optimizer keys", "optimizer", lambda s: optimizers.check_keys(s, run.labels["optimizer"]))]),
            *([("task", "task", script.check)] if script_task else []),
        ]
        if check_imports:
            checks += [
                *([] if script_task else [("task", "task", tasks.resolve)]),
                *([] if own_optimizer else [("optimizer", "optimizer", lambda s: optimizers.check_values(s, run.labels["optimizer"]))]),
            ]
        for kind, section, check in checks:
            # Equal identities are the same values: the identity's cached section object stands for them.
            key = (kind, id(run.identity[section]))
            if key not in seen:
                check(run.spec[section])
                seen.add(key)
    if not seen:
        raise ConfigError("the sweep has zero runs.")


def default_name(runs: Sequence[Run]) -> str:
    """Readable and unique: the task(s), the run count and a digest of the run ids.

    The same plan always gets the same name, so relaunching the same command resumes the same sweep.
    """
    task_names = sorted({str(r.labels["task"]) for r in runs})
    task_part = "-".join(task_names) if len(task_names) <= 2 else f"{len(task_names)}tasks"
    digest = hashlib.sha256("".join(sorted(r.id for r in runs)).encode()).hexdigest()[:6]
    return f"{task_part}-{len(runs)}runs-{digest}"
