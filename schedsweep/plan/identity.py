"""Run identity: a run's id hashes what it computes, not how its config was spelled.

The id is the first 12 hex digits of sha256 over the canonical JSON of the run's *identity*:

    {"spec_version": SPEC_VERSION, "task": ..., "optimizer": ..., "schedule": ..., "steps": ..., "seed": ...,
     "grad_clip": ...}

plus any other key of the spec (precision, accumulate, compile: the planner adds them only off their
defaults, so runs at the defaults keep their ids),

where each section is normalised this way (Dora's "normalised delta"):

1. Defaults are filled in, then every parameter whose value equals its default is left out. Defaults come
   from the task class's constructor, the optimizer class's constructor (both read by
   schedsweep.plan.signature, without importing torch) and the schedule shape's catalogue
   (schedsweep.schedules.shapes()). So `final: 0`, `final: 0.0` and no `final` are one run, and adding a
   parameter whose default keeps the old behaviour keeps every old id. `_target_` and `shape` always stay.
2. Numbers are compared by value: a float with a whole value is written as that integer (0.0 -> 0,
   1.0 -> 1), as JSON itself does not tell 1 from 1.0; booleans stay booleans; tuples are lists.
3. Every file a run reads is hashed by its contents, never its path: a schedule parameter named
   `file` (piecewise), and each task parameter named in the task class's `FILE_PARAMS` (charlm's
   `text`); a null value there names a module whose source is the data (charlm's default corpus,
   `pydoc_data.topics`, which changes with the Python version). Such parameters are always kept,
   as "sha256:<hex>", default or not.

The rule's one blind spot is a *changed default*: a run that left the key out would keep its id while
computing something else. Changing a default, or anything else a run computes from the same identity
(the training loop, a task's data or model, a shape's formula), is a new meaning: bump SPEC_VERSION,
which changes every id. Golden ids in tests/test_identity.py fail when an id changes by accident.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from schedsweep.errors import ConfigError

SPEC_VERSION = 1  # bump when the code changes what a run with a given identity computes
SCHEDULE_FILE_KEYS = ("file",)  # piecewise's table of values
_EXACT_INT = 2**53  # floats beyond are not all integers in JSON readers
_SECTIONS = ("task", "optimizer", "schedule", "steps", "seed", "grad_clip")


def canonical(value: Any) -> Any:
    """The value as the id hashes it: whole floats as ints, tuples as lists, mappings by sorted key."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"non-finite number {value!r} in the config: a run's values must be finite.")
        return int(value) if value.is_integer() and abs(value) < _EXACT_INT else value
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    raise ConfigError(f"the config value {value!r} ({type(value).__name__}) is not a number, string, list or mapping.")


def canonical_json(obj: Any) -> str:
    return json.dumps(canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def run_id(identity: Mapping[str, Any]) -> str:
    """sha256 of the identity's canonical JSON, first 12 hex digits (the same in every process)."""
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:12]


def delta(values: Mapping[str, Any], defaults: Mapping[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """values in canonical form, without those equal to their default (keys in `keep` always stay)."""
    out = {}
    for key, value in values.items():
        value = canonical(value)
        if key in keep or key not in defaults or value != canonical(defaults[key]):
            out[str(key)] = value
    return out


def file_digest(path: str, key: str) -> str:
    """'sha256:<hex>' of the file's bytes; ConfigError naming the key when it cannot be read."""
    resolved = Path(path).expanduser()
    try:
        data = resolved.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"{key} = {path!r}: cannot read the file ({e.strerror or type(e).__name__}; resolved from {Path.cwd()} "
            f"to {resolved.resolve()}). A run id hashes the contents of every file the run reads, so the file must "
            "exist when the sweep is planned."
        ) from None
    return "sha256:" + hashlib.sha256(data).hexdigest()


def module_digest(module: str, key: str) -> str:
    """'sha256:<hex>' of a module's source file, located without importing it."""
    from schedsweep.plan.signature import source_path

    path = source_path(module)
    if path is None:
        raise ConfigError(f"{key} = null reads the module {module!r}, whose source file cannot be found.")
    return file_digest(path, key)


def with_files(section: str, params: Mapping[str, Any], files: Mapping[str, str | None]) -> dict[str, Any]:
    """params with each file parameter replaced by its contents' digest (a null one: its module's source)."""
    out = dict(params)
    for key, module in files.items():
        value = params.get(key)
        if value is None and module:
            out[key] = module_digest(module, f"{section}.{key}")
        elif isinstance(value, str) and value:
            out[key] = file_digest(value, f"{section}.{key}")
    return out


def schedule_identity(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A schedule spec (label keys removed) as the id hashes it; join pieces are normalised one by one.

    An unknown shape is kept as given: schedsweep.schedules.check reports it with the valid ones.
    """
    from schedsweep.schedules import COMMON, SAMPLING, shapes

    catalogue = shapes()
    shape = spec.get("shape")
    if not isinstance(shape, str) or shape not in catalogue:
        return canonical(dict(spec))
    params = dict(spec)
    if isinstance(params.get("pieces"), (list, tuple)):
        params["pieces"] = [_piece(p) for p in params["pieces"]]
    for key in SCHEDULE_FILE_KEYS:
        if isinstance(params.get(key), str) and params[key]:
            params[key] = file_digest(params[key], f"schedule.{key}")
    defaults = {**COMMON, **SAMPLING, **catalogue[shape].parameters}
    if "pieces" in defaults:
        defaults["pieces"] = [_piece(p) for p in defaults["pieces"]]
    return delta(params, defaults, keep=("shape",))


def _piece(piece: Any) -> Any:
    if not isinstance(piece, Mapping):
        return canonical(piece)
    inner = {k: v for k, v in piece.items() if k not in ("until", "scale")}
    out = schedule_identity(inner)
    if "until" in piece:
        out["until"] = canonical(piece["until"])
    if canonical(piece.get("scale", 1.0)) != 1:
        out["scale"] = canonical(piece["scale"])
    return out


class Identifier:
    """Ids and identities of whole specs, normalising each distinct section once.

    Plans repeat a section thousands of times, mostly as the same object (the planner shares untouched
    branches), so a section is looked up by object first, then by its JSON text. `task_params(spec)`
    and `optimizer_params(spec)` give (defaults, file parameters) of a section's class
    (schedsweep.tasks.identity_params, schedsweep.train.optimizers.identity_params), asked once per class.
    """

    def __init__(self, task_params: Callable[..., Any], optimizer_params: Callable[..., Any]) -> None:
        self._params = {"task": task_params, "optimizer": optimizer_params}
        self._classes: dict[tuple[str, Any], Any] = {}
        self._by_text: dict[str, tuple[dict[str, Any], str]] = {}
        self._by_object: dict[tuple[str, int], tuple[Any, tuple[dict[str, Any], str]]] = {}

    def id_and_identity(self, spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """(run_id(identity), identity), the canonical JSON put together from the sections' cached texts."""
        (task, task_text), (opt, opt_text), (sched, sched_text) = (
            self.section(kind, spec[kind]) for kind in ("task", "optimizer", "schedule"))
        rest = {"steps": canonical(spec["steps"]), "seed": canonical(spec["seed"]), "grad_clip": canonical(spec["grad_clip"])}
        found = {"spec_version": SPEC_VERSION, "task": task, "optimizer": opt, "schedule": sched, **rest}
        # The keys in sorted order, as canonical_json writes them (tests compare the two).
        extra = {k: canonical(_without_path(k, v)) for k, v in spec.items() if k not in _SECTIONS}
        if extra:  # precision, accumulate, compile: the planner puts them in the spec only off their defaults
            found |= extra
            return run_id(found), found
        text = (f'{{"grad_clip":{_dump(rest["grad_clip"])},"optimizer":{opt_text},"schedule":{sched_text},'
                f'"seed":{_dump(rest["seed"])},"spec_version":{SPEC_VERSION},"steps":{_dump(rest["steps"])},"task":{task_text}}}')
        return hashlib.sha256(text.encode()).hexdigest()[:12], found

    def identity(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """The identity of a run spec {task, optimizer, schedule, steps, seed, grad_clip}."""
        return self.id_and_identity(spec)[1]

    def section(self, kind: str, section: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """(normalised section, its canonical JSON)."""
        hit = self._by_object.get((kind, id(section)))
        if hit is not None and hit[0] is section:
            return hit[1]
        key = kind + json.dumps(section, sort_keys=True)  # a cache key only: equal dicts, equal text
        if key not in self._by_text:
            from schedsweep.train.script import is_script

            if kind == "schedule":
                found = schedule_identity(section)
            elif kind == "task" and is_script(section):
                found = canonical(dict(section))  # its command and the digests of the files it names
            elif kind == "optimizer" and "_target_" not in section:
                found = canonical(dict(section))  # a script's own optimizer: the keys the user set (schedsweep.train.script)
            else:
                target = (kind, section.get("_target_"))
                if target not in self._classes or not isinstance(target[1], str):
                    self._classes[target] = self._params[kind](section)
                defaults, files = self._classes[target]
                found = delta(with_files(kind, section, files), defaults, keep=("_target_", *files))
            self._by_text[key] = (found, canonical_json(found))
        self._by_object[(kind, id(section))] = (section, self._by_text[key])  # holding `section` keeps its id unique
        return self._by_text[key]


def _without_path(key: str, value: Any) -> Any:
    """init_from's section as the id hashes it: the file's digest and step, not its path (schedsweep.train.init_from)."""
    if key == "init" and isinstance(value, Mapping):
        return {k: v for k, v in value.items() if k != "path"}
    return value


def _dump(value: Any) -> str:
    if value is None:
        return "null"
    return str(value) if type(value) is int else json.dumps(value, allow_nan=False)  # str(int) is its JSON, 20x faster
