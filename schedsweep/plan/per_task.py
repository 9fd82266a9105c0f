"""Keys a study sets on one task's runs only, such as the equal warm-up REX's protocol gives a transformer.

    per_task:
      charlm: {schedule.warmup: 0.05}     # every charlm run warms up over its first 5%
      classifier: {schedule.warmup: 0}    # no warm-up at all, wsd included

Each key is a dotted path set on the run's config after the sweep's values, so it holds for every schedule,
optimizer and budget of that task. A key is set only where the run's config has it: rex_onecycle has no
`warmup` (its rise from 0.1 x peak to the peak at T/2 is its warm-up), so it keeps its own. A key that no run of
the task has is an error (a typo would otherwise change nothing), unless it is a schedule parameter some
schedule shape takes (`task=regression schedule=rex_onecycle` under REX's study plans no run with a warm-up,
and that is no typo). A key given on the command line wins.
The values change runs, so they are part of each run's id; the block itself is taken out of every run's config.
"""

from __future__ import annotations

from typing import Any

from schedsweep.errors import ConfigError

KEY = "per_task"


def parse(raw: Any) -> dict[str, dict[str, Any]]:
    """{task option: {dotted key: value}} from the `per_task:` block (None: empty)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError(f"'{KEY}:' must map a task name to keys and values, e.g. "
                          f"{KEY}: {{charlm: {{schedule.warmup: 0.05}}}}; got {raw!r}.")
    blocks: dict[str, dict[str, Any]] = {}
    for task, keys in raw.items():
        for key, value in keys.items():
            if not isinstance(key, str) or not key or isinstance(value, (dict, list)):
                raise ConfigError(f"{KEY}.{task}: each entry must be a dotted key with one value "
                                  f"(e.g. schedule.warmup: 0.05); got {key!r}: {value!r}.")
        blocks[str(task)] = {str(k): v for k, v in keys.items()}
    return blocks


def apply(cfg: dict[str, Any], task: str, blocks: dict[str, dict[str, Any]], given: set[str],
          used: set[tuple[str, str]]) -> dict[str, Any]:
    """`cfg` with task's keys set where it has them (not those in `given`); records (task, key) in `used`."""
    for key, value in blocks.get(task, {}).items():
        if key in given:
            continue
        *parents, leaf = key.split(".")
        node: Any = cfg
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            cfg = set_path(cfg, key.split("."), value)
            used.add((task, key))
    return cfg


def check_used(blocks: dict[str, dict[str, Any]], tasks: set[str], used: set[tuple[str, str]],
               given: set[str]) -> None:
    """ConfigError for a key of a planned task that no run of it has (a typo, or a key of another task)."""
    for task in sorted(set(blocks) & tasks):
        unused = [k for k in blocks[task] if (task, k) not in used and k not in given and not _schedule_parameter(k)]
        if unused:
            raise ConfigError(f"{KEY}.{task}: no run of task {task} has the key(s) {', '.join(unused)}; "
                              "each must be a dotted path of the run's config, such as schedule.warmup.")


def _schedule_parameter(key: str) -> bool:
    """`schedule.<name>` where some schedule shape takes <name> (schedsweep.schedules.shapes)."""
    from schedsweep import schedules

    section, _, leaf = key.partition(".")
    return section == "schedule" and "." not in leaf and any(leaf in s.parameters for s in schedules.shapes().values())


def set_path(tree: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """A copy of `tree` with `path` set to `value`, sharing every untouched branch.

    Copying only the dicts on the path (not deep-copying the config) is what keeps planning at
    thousands of runs per second; no run record is mutated after planning, so sharing is safe.
    """
    head, *rest = path
    return {**tree, head: set_path(tree[head], rest, value) if rest else value}
