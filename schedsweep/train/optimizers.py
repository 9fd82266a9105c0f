"""Optimizers from their YAML: `_target_` names an optimizer class, the other keys are its arguments.

`lr` is the peak learning rate: the training loop sets each param group's lr to
peak_lr * schedule(step) before every update (see schedsweep.train.groups), so the optimizer's own lr is
never used as is. For Prodigy the swept lr is its multiplier of the step size it estimates (1.0 by
default); for schedule-free optimizers the schedule should be a warm-up and no decay.

A `rest:` section makes one run use two optimizers under one schedule: `_target_` then trains
only the hidden matrices (schedsweep.train.groups.split_matrices) and `rest` (an optimizer section of
its own, with its own peak lr) trains every other parameter. conf/optimizer/muon.yaml is
torch.optim.Muon on the matrices and AdamW on embeddings, head, biases and norms.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Iterator, Mapping

from schedsweep.errors import ConfigError

REST = "rest"


def resolve(spec: Mapping[str, Any], name: str = "optimizer") -> type:
    """The optimizer class named by spec['_target_'], after checking its keyword arguments (and its rest:)."""
    cls = _import(spec, name)
    params = inspect.signature(cls).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    _check_keys(spec, name, [p for p in params if p not in ("self", "params")], takes_kwargs)
    rest = spec.get(REST)
    if rest is not None:
        resolve(rest, f"{name}.{REST}")
    return cls


def check_keys(spec: Mapping[str, Any], name: str = "optimizer") -> None:
    """resolve's checks (the _target_, unknown keys, lr > 0, the rest: section), without importing torch
    when the class's source can be read (schedsweep.plan.signature): what `launch --dry-run` checks."""
    from schedsweep.plan import signature

    found = signature.read(_target(spec, name))
    if found is None:
        resolve(spec, name)
        return
    _check_keys(spec, name, [p for p in found.names if p != "params"], found.var_keyword)
    rest = spec.get(REST)
    if rest is not None:
        check_keys(rest, f"{name}.{REST}")


def _import(spec: Mapping[str, Any], name: str) -> type:
    target = _target(spec, name)
    module_name, _, attr = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"optimizer '{name}': cannot import _target_ '{target}' ({e}).") from None


def _target(spec: Mapping[str, Any], name: str) -> str:
    target = spec.get("_target_")
    if not isinstance(target, str) or "." not in target:
        raise ConfigError(
            f"optimizer '{name}' needs '_target_: <module>.<Class>' naming a torch optimizer "
            f"(e.g. torch.optim.AdamW); got {target!r}."
        )
    return target


def _check_keys(spec: Mapping[str, Any], name: str, accepted: list[str], takes_kwargs: bool) -> None:
    unknown = sorted(k for k in spec if k not in ("_target_", REST) and k not in accepted)
    if unknown and not takes_kwargs:
        raise ConfigError(
            f"optimizer '{name}' ({spec['_target_']}) has no parameter(s) {', '.join(unknown)}. "
            f"Valid: {', '.join(accepted)}, and {REST} (an optimizer for the non-matrix parameters)."
        )
    lr = spec.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(f"optimizer '{name}': lr (the peak learning rate) must be a number > 0; got {lr!r}.")
    rest = spec.get(REST)
    if rest is not None and (not isinstance(rest, Mapping) or REST in rest):
        raise ConfigError(f"optimizer '{name}': {REST} must be one optimizer section (_target_, lr, ...); got {rest!r}.")


class Optimizers:
    """One or more torch optimizers stepped as one: the loop sees their param groups as one list.

    Schedule-free optimizers keep two points; train() and eval() switch the model's weights between
    them and are no-ops for the others.
    """

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts

    @property
    def param_groups(self) -> Iterator[dict[str, Any]]:
        return (g for part in self.parts for g in part.param_groups)

    def zero_grad(self) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=True)

    def train(self) -> None:
        for part in self.parts:
            if callable(getattr(part, "train", None)):
                part.train()

    def eval(self) -> None:
        for part in self.parts:
            if callable(getattr(part, "eval", None)):
                part.eval()

    def state_dict(self) -> dict[str, Any]:
        return {"parts": [part.state_dict() for part in self.parts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for part, part_state in zip(self.parts, state["parts"], strict=True):
            part.load_state_dict(part_state)


def build(spec: Mapping[str, Any], model: Any, groups: list[dict[str, Any]]) -> Optimizers:
    """The run's optimizer(s) over the task's parameter groups, each group at peak_lr = lr * lr_scale."""
    from schedsweep.train.groups import split_matrices, with_peaks

    rest = spec.get(REST)
    if rest is None:
        return Optimizers([_one(spec, with_peaks(groups, float(spec["lr"])))])
    matrices, others = split_matrices(model, groups)
    parts = [_one(s, with_peaks(g, float(s["lr"]))) for s, g in ((spec, matrices), (rest, others)) if g]
    return Optimizers(parts)


def _one(spec: Mapping[str, Any], groups: list[dict[str, Any]]) -> Any:
    cls = resolve(spec)
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k not in ("_target_", REST)}
    return cls(groups, **kwargs)


def identity_params(spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str | None]]:
    """(constructor defaults, no file parameters) of the optimizer class, for its run id.

    Read from the source without importing torch (schedsweep.plan.signature), else imported and inspected.
    """
    from schedsweep.plan import signature

    target = spec.get("_target_")
    static = signature.read(target) if isinstance(target, str) else None
    if static is not None:
        return static.defaults, {}
    cls = _import(spec, "optimizer")  # the keys are checked by the plan, with the optimizer's name
    empty = inspect.Parameter.empty
    return {n: p.default for n, p in inspect.signature(cls).parameters.items() if p.default is not empty}, {}


def check_values(spec: Mapping[str, Any], name: str = "optimizer") -> None:
    """Build the optimizer once on a dummy 2-D parameter (Muon takes matrices only): ConfigError naming the key whose value it rejects.

    torch checks ranges in the constructor (betas in [0, 1), momentum >= 0, ...) and says which value
    is wrong but not which key; the key is the one whose default, put back alone, makes the build pass.
    """
    import torch

    resolve(spec, name)
    if spec.get(REST) is not None:
        check_values(spec[REST], f"{name}.{REST}")
        spec = {k: v for k, v in spec.items() if k != REST}
    try:
        _one(spec, [{"params": [torch.nn.Parameter(torch.zeros(2, 2))]}])
        return
    except (ValueError, TypeError, RuntimeError) as e:
        reason = " ".join(str(e).split())
    defaults = identity_params(spec)[0]
    for key in (k for k in spec if k in defaults and spec[k] != defaults[k]):
        try:
            _one({**spec, key: defaults[key]}, [{"params": [torch.nn.Parameter(torch.zeros(2, 2))]}])
        except (ValueError, TypeError, RuntimeError):
            continue
        raise ConfigError(
            f"optimizer '{name}': optimizer.{key}={spec[key]!r} is rejected by {spec['_target_']}: {reason}. "
            f"Set optimizer.{key} to an allowed value (its default is {defaults[key]!r})."
        )
    raise ConfigError(f"optimizer '{name}' ({spec['_target_']}) rejects its values {dict(spec)}: {reason}.")
