"""Parameter groups: which parameters share optimizer options, and their peak learning rates.

A task may define `param_groups(model) -> list[dict]`, each dict a torch param group: `params` (a
list of parameters) plus options. `lr_scale` (default 1.0) multiplies the optimizer's peak `lr` for
that group; any other key (`weight_decay`, `betas`, ...) is passed to the optimizer for that group.
Each group records its own peak as `peak_lr`, and the loop sets, before update t,

    group["lr"] = group["peak_lr"] * f(t),   peak_lr = optimizer lr * lr_scale

so one schedule drives every group, and the metrics' `lr` column stays the base `peak * f(t)`.
A task without `param_groups` trains all its parameters in one group.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from schedsweep.errors import TaskError

# Parameters of these modules are scale/shift parameters: nanoGPT (and most LLM recipes) do not decay them.
_NORMS = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.RMSNorm, torch.nn.modules.batchnorm._NormBase)


def no_decay_groups(model: torch.nn.Module) -> list[dict[str, Any]]:
    """nanoGPT's split: weight decay on weights of 2 or more dimensions (matrices, embeddings, kernels);
    none on biases and normalisation parameters (every parameter of fewer than 2 dimensions, and
    every parameter of a norm layer). A tied parameter appears once (model.parameters() dedupes).
    """
    norm_params = {id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)}
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 and id(p) not in norm_params else no_decay).append(p)
    return [g for g in ({"params": decay}, {"params": no_decay, "weight_decay": 0.0}) if g["params"]]


def task_groups(task: Any, model: torch.nn.Module) -> list[dict[str, Any]]:
    """The task's groups (checked), or one group of every trainable parameter."""
    if not callable(getattr(task, "param_groups", None)):
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]
    where = f"task {type(task).__name__}.param_groups(model)"
    groups = task.param_groups(model)
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) and "params" in g for g in groups):
        raise TaskError(f"{where} must return a list of dicts, each with a 'params' list; got {groups!r:.200}.")
    seen: set[int] = set()
    checked = []
    for i, group in enumerate(groups):
        params = list(group["params"])
        scale = group.get("lr_scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (scale >= 0 and math.isfinite(scale)):
            raise TaskError(f"{where}: group {i} has lr_scale {scale!r}; it must be a finite number >= 0.")
        for p in params:
            if id(p) in seen:
                raise TaskError(f"{where}: a parameter of shape {tuple(p.shape)} is in two groups; each may be in one.")
            seen.add(id(p))
        checked.append(group | {"params": params})
    missing = [tuple(p.shape) for p in model.parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise TaskError(f"{where} leaves out {len(missing)} trainable parameter(s) (shapes {missing[:4]}); "
                        f"put every trainable parameter in a group (a frozen one needs requires_grad=False).")
    return checked


def with_peaks(groups: list[dict[str, Any]], lr: float) -> list[dict[str, Any]]:
    """Torch param groups with lr = peak_lr = lr * lr_scale (lr_scale kept for the record)."""
    out = []
    for group in groups:
        scale = float(group.get("lr_scale", 1.0))
        out.append(group | {"lr": lr * scale, "peak_lr": lr * scale, "lr_scale": scale})
    return out


def split_matrices(model: torch.nn.Module, groups: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(hidden-matrix groups, the rest), each group cut in two with its options kept.

    Hidden matrices are the 2-D weights of nn.Linear layers, except the output layer (the last
    nn.Linear the model registers, as the head of every built-in task is) and any weight that an
    nn.Embedding also holds (a tied head). Muon takes the hidden matrices; embeddings, the head,
    biases and norms go to AdamW, as in Muon's reference set-up.
    """
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    embedded = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    hidden = {id(m.weight) for m in linears[:-1] if m.weight.dim() == 2} - embedded
    matrices, rest = [], []
    for group in groups:
        mine = [p for p in group["params"] if id(p) in hidden]
        others = [p for p in group["params"] if id(p) not in hidden]
        if mine:
            matrices.append(group | {"params": mine})
        if others:
            rest.append(group | {"params": others})
    return matrices, rest

