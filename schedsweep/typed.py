"""Settings typed once: dataclass fields that carry their own bounds, and one parser that fills defaults
and names the key, the value and what is allowed.

    @dataclass(frozen=True)
    class Keys:
        seed: int = number(0, low=0, doc="model init and batch order")

    parse(Keys, {"seed": 3}, prefix="")      # Keys(seed=3); {"seed": -1} -> ConfigError "seed must be an integer >= 0; got -1."

A 0 stays 0 wherever 0 is within bounds (never `value or default`), and is refused by name where it is
not. The executor settings (schedsweep.executors.settings) and a run's top-level keys
(schedsweep.plan.point) are declared this way; the docs' configuration reference is generated from them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence, TypeVar

from schedsweep.errors import ConfigError

T = TypeVar("T")


def number(default: Any, *, low: float, kind: type = int, null: bool = False, above: bool = False, doc: str = "",
           aside: str = "") -> Any:
    """A number field: `kind` (int, or float which also takes ints), >= low (> low when `above`), null when `null`.
    `aside` follows the key's name in messages ("lr_mult (a multiplier of optimizer.lr) must be ...")."""
    return dataclasses.field(default=default, metadata={"kind": kind, "low": low, "above": above, "null": null, "doc": doc,
                                                        "aside": aside})


def choice(default: str, options: Sequence[str], doc: str = "") -> Any:
    return dataclasses.field(default=default, metadata={"options": tuple(options), "doc": doc})


def flag(default: bool, doc: str = "") -> Any:
    return dataclasses.field(default=default, metadata={"kind": bool, "doc": doc})


def text(doc: str = "") -> Any:
    return dataclasses.field(default=None, metadata={"kind": str, "null": True, "doc": doc})


def parse(cls: type[T], cfg: Mapping[str, Any], prefix: str, what: str) -> T:
    """`cls` from `cfg`: unknown keys refused (listing the valid ones with defaults), each value checked."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(cfg) - set(fields))
    if unknown:
        valid = ", ".join(f"{name} (default {default(f)!r})" for name, f in fields.items() if name != "kind")
        raise ConfigError(f"{what} has no key(s) {', '.join(map(str, unknown))}. Valid keys: {valid}.")
    return cls(**{key: check(prefix + key, value, fields[key]) for key, value in cfg.items()})


def default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def allowed(f: dataclasses.Field) -> str:
    """What the field takes, in words ("an integer >= 1 (or null)"); "" when it declares nothing."""
    meta = f.metadata
    if "low" in meta:
        what = "an integer" if meta["kind"] is int else "a number"
        bound = f"> {meta['low']:g}" if meta["above"] else f">= {meta['low']:g}"
        return f"{what} {bound}{' (or null)' if meta['null'] else ''}"
    if "options" in meta:
        *first, last = meta["options"]
        return f"{', '.join(first)} or {last}" if first else last
    if meta.get("kind") is bool:
        return "true or false"
    if meta.get("kind") is str:
        return "a string (or null)"
    return ""


def check(key: str, value: Any, f: dataclasses.Field) -> Any:
    """`value` for the field, typed; ConfigError "KEY must be ALLOWED; got VALUE." otherwise."""
    meta = f.metadata
    if value is None and meta.get("null"):
        return None
    if "low" in meta:
        number_types = (int,) if meta["kind"] is int else (int, float)
        ok = not isinstance(value, bool) and isinstance(value, number_types) and (
            value > meta["low"] if meta["above"] else value >= meta["low"])
        if ok:
            return meta["kind"](value)
    elif "options" in meta:
        if value in meta["options"]:
            return value
    elif meta.get("kind") is bool:
        if isinstance(value, bool):
            return value
    elif meta.get("kind") is str:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    else:
        return value  # declared by its type alone: the owner checks it
    aside = f" ({meta['aside']})" if meta.get("aside") else ""
    raise ConfigError(f"{key}{aside} must be {allowed(f)}; got {value!r}.")
