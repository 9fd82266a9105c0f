"""Optional parts of a run's spec, each in the spec (and so the run id) only when set, so runs without
them keep their ids: weight averaging (`average`, schedsweep.train.averaging) and a starting checkpoint
(`init`, schedsweep.train.init_from)."""

from __future__ import annotations

import os
from typing import Any

from schedsweep.errors import ConfigError

AVERAGES = ("none", "ema", "lawa")  # schedsweep.train.averaging


def spec_parts(keys: Any, task: dict[str, Any], steps: int) -> dict[str, Any]:
    """{"average": ..., "init": ...} for the run's keys (plan.point.RunKeys), each only when set."""
    from schedsweep.train import script

    parts: dict[str, Any] = {}
    average = _average(keys)
    if average is not None:
        if script.is_script(task):
            raise ConfigError(f"average={keys.average}: the built-in loop keeps the average, and task=script runs your "
                              "own loop; average your weights there (or set average=none).")
        parts["average"] = average
    if keys.init_from is not None:
        parts["init"] = _init(keys, steps)
    return parts


def _average(keys: Any) -> dict[str, Any] | None:
    """The spec's `average` part, with only its kind's parameters; None for none."""
    if keys.average == "ema":
        if keys.ema_decay >= 1:
            raise ConfigError(f"ema_decay must be a number in (0, 1); got {keys.ema_decay!r}.")
        return {"kind": "ema", "decay": keys.ema_decay}
    if keys.average == "lawa":
        return {"kind": "lawa", "k": keys.lawa_k, "every": keys.lawa_every}
    return None


def _init(keys: Any, steps: int) -> dict[str, Any]:
    """The spec's `init` part: the checkpoint's absolute path (not in the id), its content digest and its step."""
    if keys.init_step >= steps - 1:
        raise ConfigError(f"init_step={keys.init_step} leaves nothing to compare of a {steps}-step budget: runs from "
                          f"init_from train steps init_step..T-1, so give budgets of more than init_step + 1 steps.")
    path = os.path.abspath(os.path.expanduser(keys.init_from or ""))
    return {"path": path, "step": keys.init_step, "digest": _digest(path)}


_digests: dict[tuple[str, int, int], str] = {}


def _digest(path: str) -> str:
    """file_digest once per file version in a process (a plan asks once per run)."""
    from schedsweep.plan.identity import file_digest

    try:
        st = os.stat(path)
    except OSError:
        return file_digest(path, "init_from")  # its message names the key and the path
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _digests:
        _digests[key] = file_digest(path, "init_from")
    return _digests[key]
