"""Runs that start from a checkpoint the user brings (`init_from=PATH init_step=N`): cooldowns of your own
stable-phase checkpoint.

The file is a torch.save'd dict:

    {"model": model.state_dict(),              # required: loaded with load_state_dict (strict)
     "optimizer": optimizer.state_dict()}      # optional: without it the optimizer starts fresh

where `optimizer` is either a plain torch optimizer built over ``model.parameters()`` in their order (any
param groups: its per-parameter state is matched to the sweep's optimizer parameter by parameter), or a
schedsweep checkpoint's own ``{"parts": [...]}``. Hyperparameters (lr, betas, weight decay) are the sweep's:
only the per-parameter state (moments, step counts) is taken.

The run continues the checkpoint's run: its budget T counts from that run's step 0, it trains updates
init_step..T-1 with the LR of those steps (peak x f(step) over the whole budget, so WSD's cooldown falls
where it would have), and the task's batch stream resumes at batch init_step x accumulate. Its metrics start
at step init_step. Its spec holds ``init: {path, step, digest}``; the id hashes the content digest and the
step, never the path (schedsweep.plan.identity). A script task reads the path as ``run.init_checkpoint``.
"""

from __future__ import annotations

from typing import Any

import torch

from schedsweep.errors import ConfigError


def load(init: dict[str, Any], model: torch.nn.Module, optimizer: Any) -> int:
    """Load the user's checkpoint into `model` and `optimizer` (schedsweep.train.optimizers.Optimizers); the
    first step to train."""
    from schedsweep.plan.identity import file_digest

    path = str(init["path"])
    if file_digest(path, "init_from") != init["digest"]:
        raise ConfigError(f"init_from = {path!r} has changed since the sweep was planned (its digest is not "
                          f"{init['digest']}); the run id names the file's content: plan a new sweep for the new file.")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "model" not in state:
        raise ConfigError(f"init_from = {path!r} is not a checkpoint of the documented format: a dict with 'model' "
                          "(model.state_dict()) and optionally 'optimizer' (optimizer.state_dict()).")
    model.load_state_dict(state["model"])
    if state.get("optimizer") is not None:
        load_optimizer(optimizer, state["optimizer"], model)
    return int(init["step"])


def load_optimizer(optimizer: Any, saved: dict[str, Any], model: torch.nn.Module) -> None:
    """A schedsweep {"parts": [...]} state as is; a plain torch optimizer's state parameter by parameter."""
    if "parts" in saved:
        optimizer.load_state_dict(saved)
        return
    order = [p for p in model.parameters()]  # the user's optimizer's parameter order
    theirs = [i for group in saved["param_groups"] for i in group["params"]]
    if len(theirs) != len(order):
        raise ConfigError(f"init_from: the optimizer state covers {len(theirs)} parameters and the model has {len(order)}; "
                          "save the state of an optimizer built over model.parameters().")
    by_param = {id(order[pos]): saved["state"][index] for pos, index in enumerate(theirs)
                if pos < len(order) and index in saved["state"]}
    for part in optimizer.parts:
        mine = part.state_dict()
        params = [p for group in part.param_groups for p in group["params"]]
        indices = [i for group in mine["param_groups"] for i in group["params"]]
        mine["state"] = {i: by_param[id(p)] for i, p in zip(indices, params) if id(p) in by_param}
        part.load_state_dict(mine)
