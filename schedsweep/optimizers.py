"""Optimizers from their YAML: `_target_` names a torch.optim class, the other keys are its arguments.

`lr` is the peak learning rate: the training loop overwrites each param group's lr with
peak * schedule(step) before every update, so the optimizer's own lr is never used as is.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Iterable, Mapping

from schedsweep.errors import ConfigError


def resolve(spec: Mapping[str, Any], name: str = "optimizer") -> type:
    """The optimizer class named by spec['_target_'], after checking its keyword arguments."""
    target = _target(spec, name)
    module_name, _, attr = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"optimizer '{name}': cannot import _target_ '{target}' ({e}).") from None
    params = inspect.signature(cls).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    _check_keys(spec, name, [p for p in params if p not in ("self", "params")], takes_kwargs)
    return cls


def check_keys(spec: Mapping[str, Any], name: str = "optimizer") -> None:
    """resolve's checks (the _target_, unknown keys, lr > 0), without importing torch when the class's
    source can be read (schedsweep.signature): what `launch --dry-run` checks."""
    from schedsweep import signature

    found = signature.read(_target(spec, name))
    if found is None:
        resolve(spec, name)
    else:
        _check_keys(spec, name, [p for p in found.names if p != "params"], found.var_keyword)


def _target(spec: Mapping[str, Any], name: str) -> str:
    target = spec.get("_target_")
    if not isinstance(target, str) or "." not in target:
        raise ConfigError(
            f"optimizer '{name}' needs '_target_: <module>.<Class>' naming a torch optimizer "
            f"(e.g. torch.optim.AdamW); got {target!r}."
        )
    return target


def _check_keys(spec: Mapping[str, Any], name: str, accepted: list[str], takes_kwargs: bool) -> None:
    unknown = sorted(k for k in spec if k != "_target_" and k not in accepted)
    if unknown and not takes_kwargs:
        raise ConfigError(
            f"optimizer '{name}' ({spec['_target_']}) has no parameter(s) {', '.join(unknown)}. "
            f"Valid: {', '.join(accepted)}."
        )
    lr = spec.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(f"optimizer '{name}': lr (the peak learning rate) must be a number > 0; got {lr!r}.")


def build(spec: Mapping[str, Any], params: Iterable[Any]) -> Any:
    cls = resolve(spec)
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k != "_target_"}
    return cls(params, **kwargs)



def identity_params(spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str | None]]:
    """(constructor defaults, no file parameters) of the optimizer class, for its run id.

    Read from the source without importing torch (schedsweep.signature), else imported and inspected.
    """
    from schedsweep import signature

    target = spec.get("_target_")
    static = signature.read(target) if isinstance(target, str) else None
    if static is not None:
        return static.defaults, {}
    cls = resolve(spec)
    empty = inspect.Parameter.empty
    return {n: p.default for n, p in inspect.signature(cls).parameters.items() if p.default is not empty}, {}


def check_values(spec: Mapping[str, Any], name: str = "optimizer") -> None:
    """Build the optimizer once on a dummy parameter: ConfigError naming the key whose value it rejects.

    torch checks ranges in the constructor (betas in [0, 1), momentum >= 0, ...) and says which value
    is wrong but not which key; the key is the one whose default, put back alone, makes the build pass.
    """
    import torch

    cls = resolve(spec, name)
    try:
        build(spec, [torch.nn.Parameter(torch.zeros(1))])
        return
    except (ValueError, TypeError, RuntimeError) as e:
        reason = " ".join(str(e).split())
    defaults = identity_params(spec)[0]
    for key in (k for k in spec if k in defaults and spec[k] != defaults[k]):
        try:
            build({**spec, key: defaults[key]}, [torch.nn.Parameter(torch.zeros(1))])
        except (ValueError, TypeError, RuntimeError):
            continue
        raise ConfigError(
            f"optimizer '{name}': optimizer.{key}={spec[key]!r} is rejected by {spec['_target_']}: {reason}. "
            f"Set optimizer.{key} to an allowed value (its default is {defaults[key]!r})."
        )
    raise ConfigError(f"optimizer '{name}' ({spec['_target_']}) rejects its values {dict(spec)}: {reason}.")
