"""Settings: which spec keys tell a sweep's runs apart, whatever command lines planned them.

A sweep folder can hold several launches (`--name pool` twice, the second with `task.hidden=8`). A run's
*setting* is its task, its optimizer and the value of every spec key that differs between runs of the
folder; runs of one setting differ only in what is compared (schedule, budget/steps), tuned (peak LR)
or aggregated (seed), so the report never pools two configurations as seeds. Values are compared as
the run id sees them (schedsweep.plan.identity: defaults filled, numbers by value, files by contents), and
shown as the user set them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from schedsweep.sweep import store

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
    """new_setting_keys of a launch of plan `runs` (schedsweep.plan.point.Run) into `sweep_dir`, before it is written."""
    if not store.is_sweep(sweep_dir):
        return []
    return new_setting_keys(store.read_plan(sweep_dir), [r.record() for r in runs])


def queue_order(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records in the order a local queue starts them: each setting's runs spread evenly over the
    queue, in plan order within a setting.

    A study plans setting after setting (task-major), and tasks differ 10x in the cost of a step. In
    plan order the first tenth of the runs would all be the cheapest task's: nothing would be known of
    the others (partial results, a step's cost for the ETA) until late. Interleaved, a tenth of the
    queue is about a tenth of every setting.
    """
    meanings = [meaning_of(r) for r in records]
    keys = differing(records, meanings)
    groups: dict[str, list[int]] = {}
    for i, (record, meaning) in enumerate(zip(records, meanings)):
        labels = record.get("labels") or {}
        setting = [labels.get("task"), labels.get("optimizer"), *(meaning.get(k, ABSENT) for k in keys)]
        groups.setdefault(json.dumps(setting, sort_keys=True, default=str), []).append(i)
    place = {i: (j + 0.5) / len(members) for members in groups.values() for j, i in enumerate(members)}
    return [records[i] for i in sorted(range(len(records)), key=lambda i: (place[i], i))]


def meaning_of(record: dict[str, Any]) -> dict[str, Any]:
    """A record's flattened identity (or, for plans written before identities, its spec)."""
    from schedsweep.plan.identity import canonical

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
    every = dict.fromkeys(k for m in meanings for k in m)
    keys = [k for k in every if not any(k == x or k.startswith(x + ".") for x in NOT_SETTING)]
    labels = [r.get("labels") or {} for r in records]
    groups = [{s: lab.get(s) for s in LABELLED} for lab in labels]
    found = varying(meanings, keys, lambda i, key: groups[i].get(key.split(".")[0]))
    return [k for k in keys if any(key == k for _, key in found)]


def varying(meanings: list[dict[str, Any]], keys: list[str], group: Any) -> set[tuple[Any, str]]:
    """(group, key) pairs where `key` takes two values (absent = the default is one) among the runs of
    one group; `group(i, key)` is run i's group for that key. One pass over the runs."""
    first: dict[tuple[Any, str], Any] = {}
    found: set[tuple[Any, str]] = set()
    for i, meaning in enumerate(meanings):
        for key in keys:
            value = meaning.get(key, ABSENT)
            value = json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else (type(value) is bool, value)
            where = (group(i, key), key)
            if first.setdefault(where, value) != value:
                found.add(where)
    return found


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
    keys = [k for k in dict.fromkeys(k for m in meanings for k in m) if k.startswith("schedule.")]
    labels = [r.get("labels") or {} for r in records]
    groups = [(lab.get("schedule"), lab.get("task"), lab.get("optimizer"), lab.get("steps"),
               json.dumps([m.get(k, ABSENT) for k in setting], sort_keys=True)) for lab, m in zip(labels, meanings)]
    found = varying(meanings, keys, lambda i, key: groups[i])
    return {name: [k for k in keys if any(g[0] == name and key == k for g, key in found)]
            for name in dict.fromkeys(g[0] for g in groups)}


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


def matches(value: Any, wanted: Sequence[str]) -> bool:
    """Whether a run's label equals one of the values a user typed (`--where`, `--fit`): numbers by value
    (budget=1 matches 1.0, lr=1e-3 matches 0.001), anything else as text."""
    for w in wanted:
        try:
            if float(w) == float(value):
                return True
        except (TypeError, ValueError):
            pass
        if str(value) == w:
            return True
    return False
