"""Settings: which spec keys tell a sweep's runs apart, whatever command lines planned them.

A sweep folder can hold several launches (`--name pool` twice, the second with `task.hidden=8`). A run's
*setting* is its task, its optimizer and the value of every spec key that differs between runs of the
folder; runs of one setting differ only in what is compared (schedule, budget/steps), tuned (peak LR)
or aggregated (seed), so the report never pools two configurations as seeds. Values are compared as
the run id sees them (schedsweep.identity: defaults filled, numbers by value, files by contents), and
shown as the user set them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from schedsweep import store

# Spec keys that do not define a setting: compared (schedule: its variants are named in the schedule
# label instead; steps), tuned (optimizer.lr) or aggregated (seed).
NOT_SETTING = ("schedule", "steps", "optimizer.lr", "seed", "spec_version")
LABELLED = ("task", "optimizer", "schedule")  # sections whose keys are compared among runs of one label
ABSENT = "\0absent"  # a key a run's identity leaves out: its default


def setting_keys(records: list[dict[str, Any]]) -> list[str]:
    """The spec keys that tell the runs' settings apart, in first-seen order, e.g. ["task.hidden"].

    A key counts when its value (as the run id sees it: defaults filled, numbers by value, files by
    contents) differs between two runs, whatever the command lines were. Keys of the task and optimizer
    sections are compared among runs of one task (optimizer) name, which is a setting column already;
    schedule keys, steps, optimizer.lr and seed are compared, tuned or aggregated, never a setting.
    """
    return differing(records, [meaning_of(r) for r in records])


def new_setting_keys(existing: list[dict[str, Any]], added: list[dict[str, Any]]) -> list[str]:
    """Setting keys that the `added` records (a new launch into an existing sweep) make differ."""
    if not existing:
        return []
    known = {r.get("id") for r in existing}
    before = set(setting_keys(existing))
    return [k for k in setting_keys(existing + [r for r in added if r.get("id") not in known]) if k not in before]


def added_settings(sweep_dir: Path, runs: Sequence[Any]) -> list[str]:
    """new_setting_keys of a launch of plan `runs` (schedsweep.plan.Run) into `sweep_dir`, before it is written."""
    if not store.is_sweep(sweep_dir):
        return []
    return new_setting_keys(store.read_plan(sweep_dir), [r.record() for r in runs])


def meaning_of(record: dict[str, Any]) -> dict[str, Any]:
    """A record's flattened identity (or, for plans written before identities, its spec)."""
    from schedsweep.identity import canonical

    return flat(record.get("identity") or canonical(record.get("spec") or {}))


def flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differing(records: list[dict[str, Any]], meanings: list[dict[str, Any]]) -> list[str]:
    """The setting keys of setting_keys, from the records' flattened identities."""
    keys = dict.fromkeys(k for m in meanings for k in m if not any(k == x or k.startswith(x + ".") for x in NOT_SETTING))
    labels = [r.get("labels") or {} for r in records]
    out = []
    for key in keys:
        section = key.split(".")[0]
        if varies(meanings, key, [lab.get(section) if section in LABELLED else None for lab in labels]):
            out.append(key)
    return out


def varies(meanings: list[dict[str, Any]], key: str, groups: list[Any]) -> bool:
    """Whether `key` takes two values (absent = the default is one) among the runs of one group."""
    values: dict[Any, set[str]] = {}
    for group, meaning in zip(groups, meanings):
        seen = values.setdefault(group, set())
        seen.add(json.dumps(meaning.get(key, ABSENT), sort_keys=True))
        if len(seen) > 1:
            return True
    return False


def shown(record: dict[str, Any], meaning: dict[str, Any], key: str, absent: Any = None) -> Any:
    """A setting's value as the user set it (the spec's, e.g. a file's path), else as the id sees it."""
    node: Any = record.get("spec") or {}
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return meaning.get(key, absent)
        node = node[part]
    return node


def schedule_variants(records: list[dict[str, Any]], meanings: list[dict[str, Any]], setting: list[str]) -> dict[Any, list[str]]:
    """Per schedule name, the schedule keys in which its runs of one (setting, steps) differ, e.g.
    {"cosine": ["schedule.final"]}. Across settings or budgets a name may stand for different specs
    (the refinement study's `refined` schedule is fitted per optimizer): those are not variants."""
    keys = dict.fromkeys(k for m in meanings for k in m if k.startswith("schedule."))
    groups = [(lab.get("task"), lab.get("optimizer"), lab.get("steps"), lab.get("schedule"),
               json.dumps([m.get(k, ABSENT) for k in setting], sort_keys=True))
              for lab, m in zip((r.get("labels") or {} for r in records), meanings)]
    out: dict[Any, list[str]] = {}
    for key in keys:
        for name in dict.fromkeys(g[3] for g in groups):
            if varies([m for m, g in zip(meanings, groups) if g[3] == name], key, [g for g in groups if g[3] == name]):
                out.setdefault(name, []).append(key)
    return out


def schedule_name(record: dict[str, Any], meaning: dict[str, Any], variant_keys: list[str]) -> Any:
    """The run's schedule name, with the values of `variant_keys` when its runs differ: "cosine (final=0.1)".

    Each variant then ranks as a schedule of its own instead of being pooled with the others.
    """
    name = (record.get("labels") or {}).get("schedule")
    if not variant_keys:
        return name
    values = ", ".join(f"{k.removeprefix('schedule.')}={text(shown(record, meaning, k, 'default'))}" for k in variant_keys)
    return f"{name} ({values})"


def text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)
