"""Kept trunks: forks that stay on disk after their branches finish, so a later launch can branch new budgets
and new cooldowns from them (Hägele et al.'s "cooldowns from any checkpoint", arXiv 2405.18392).

`keep_trunk` (a sweep key, never in a run id):

- ``none``: forks go once their branches are done (schedsweep.sharing.forks.remove_forks), as before.
- ``forks``: every fork this launch writes stays.
- ``every:FRACTION``: also every run that trains from step 0 (a tree's trunk, or a run alone) keeps a fork at
  each multiple of FRACTION x its steps within its *stable prefix*: the updates over which its LR equals the
  same schedule's at HORIZON x its budget (WSD: up to its cooldown; constant: all of it; cosine: none), the
  only steps from which a run of another budget can branch.

A run that keeps its forks says so in run.json (`keep_forks: true`, schedsweep.sharing.forks.KEEP); its forks are
listed in `forks` like any other, so the loop writes them as it passes (a Slurm run is cut only at the forks
a branch of the same submission waits for). `schedsweep prune-checkpoints SWEEP` removes them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from schedsweep import schedules
from schedsweep.errors import ConfigError
from schedsweep.sharing import forks
from schedsweep.sharing.branching import Sharing, prefix_length

HORIZON = 4  # a stable prefix is where the LR equals the same schedule's at 4x the budget


@dataclass(frozen=True)
class KeepTrunk:
    mode: str = "none"  # none | forks | every
    fraction: float = 0.0  # every: the spacing of kept forks, a fraction of the run's steps

    @classmethod
    def parse(cls, value: Any) -> "KeepTrunk":
        text = str(value).strip() if value is not None else "none"
        if text in ("none", "forks"):
            return cls(text)
        if text.startswith("every:"):
            try:
                fraction = float(text.split(":", 1)[1])
            except ValueError:
                fraction = 0.0
            if 0 < fraction < 1:
                return cls("every", fraction)
        raise ConfigError(f"keep_trunk must be none, forks or every:FRACTION with FRACTION in (0, 1) (e.g. every:0.125); "
                          f"got {value!r}.")

    @property
    def on(self) -> bool:
        return self.mode != "none"


def stable_prefix(spec: dict[str, Any]) -> int:
    """Updates over which the run's LR equals the same schedule's at HORIZON x its steps (0 for stateful ones)."""
    steps = int(spec["steps"])
    f = schedules.build(spec["schedule"], steps)
    if schedules.stateful(f):
        return 0
    long = schedules.build(spec["schedule"], HORIZON * steps)
    grid = np.arange(steps, dtype=np.float64)
    return prefix_length(np.asarray(f(grid)), np.asarray(long(grid)))


def every_steps(spec: dict[str, Any], fraction: float, after: int = 0) -> tuple[int, ...]:
    """Steps k = round(i x fraction x T), i = 1, 2, ..., with after < k <= the stable prefix and k <= T - 1."""
    steps = int(spec["steps"])
    last = min(stable_prefix(spec), steps - 1)
    out, i = set(), 1
    while (k := int(i * fraction * steps + 0.5)) <= last:
        if k > after:
            out.add(k)
        i += 1
    return tuple(sorted(out))


def record_keys(keep: KeepTrunk, sharing: Sharing, run: Any, start: int = 0) -> dict[str, Any]:
    """What run.json says when the run keeps its forks: `forks` (this launch's and, for every:F, the kept
    steps after `start`, the step a branch starts from) and `keep_forks: true`; {} when it keeps none."""
    if not keep.on:
        return {}
    steps = set(sharing.forks.get(run.id, ()))
    if keep.mode == "every" and run.id not in sharing.branches:
        steps |= set(every_steps(run.spec, keep.fraction, after=start))
    return {"forks": sorted(steps), forks.KEEP: True} if steps else {}


def count(keep: KeepTrunk, sharing: Sharing, runs: Sequence[Any]) -> tuple[int, dict[str, int]]:
    """(forks the plan keeps, how many per run id)."""
    per = {r.id: len(record_keys(keep, sharing, r).get("forks", ())) for r in runs}
    return sum(per.values()), per


def checkpoint_bytes(spec: dict[str, Any]) -> int:
    """Bytes of a checkpoint of this run: the model, the optimizer state after one step, an average's copies
    (built and serialised in memory; the RNG states and running numbers add a few kB)."""
    import torch

    from schedsweep import tasks
    from schedsweep.train import groups, optimizers

    task = tasks.build(spec["task"], int(spec["seed"]))
    model = task.build_model()
    optimizer = optimizers.build(spec["optimizer"], model, groups.task_groups(task, model))
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    optimizer.train()
    for part in optimizer.parts:
        part.step()  # its state tensors (Adam's moments) exist only after a step
    params = [p for p in model.parameters() if p.requires_grad]
    average = spec.get("average") or {}
    copies = {"ema": 1, "lawa": int(average.get("k", 0))}.get(average.get("kind"), 0)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "average": [[p.detach().clone() for p in params] for _ in range(copies)]}, buffer)
    return len(buffer.getvalue())


def disk_line(keep: KeepTrunk, sharing: Sharing, runs: Sequence[Any]) -> str | None:
    """'keep_trunk=every:0.125 keeps up to 14 checkpoints (2 runs), about 3.1 MB until schedsweep prune-checkpoints'."""
    if not keep.on:
        return None
    total, per = count(keep, sharing, runs)
    if not total:
        return f"keep_trunk={_name(keep)} keeps no checkpoint (no run has a fork or a stable prefix to keep)"
    sizes: dict[str, int] = {}
    size = 0
    for run in runs:
        if per[run.id]:
            key = repr(sorted((k, repr(v)) for k, v in run.spec.items() if k not in ("steps", "schedule", "seed")))
            if key not in sizes:
                sizes[key] = checkpoint_bytes(run.spec)
            size += per[run.id] * sizes[key]
    keepers = sum(1 for n in per.values() if n)
    return (f"keep_trunk={_name(keep)} keeps up to {total} checkpoints ({keepers} run{'s' if keepers != 1 else ''}), "
            f"about {human_bytes(size)} on disk until `schedsweep prune-checkpoints`")


def _name(keep: KeepTrunk) -> str:
    return f"every:{keep.fraction:g}" if keep.mode == "every" else keep.mode


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
