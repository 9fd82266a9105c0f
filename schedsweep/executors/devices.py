"""GPU slots for the local pool: which devices this machine offers, and which a worker or a run holds.

A worker process is pinned to its device through CUDA_VISIBLE_DEVICES, set in its environment before it
starts (so before torch is imported): inside the worker that device is `cuda:0`, which is where the loop
puts a single-process run (`cuda:LOCAL_RANK`). A DDP run (tasks_per_node > 1) holds tasks_per_node
devices, one per rank. A device serves at most runs_per_gpu runs at once.

    executor.gpus=auto       every visible CUDA device (CUDA_VISIBLE_DEVICES when set, else `nvidia-smi -L`);
                             none on a machine without GPUs: the pool runs on CPU, as before
    executor.gpus=2          the first two of those
    executor.gpus=[0,1,2,3]  these device ids, trusted as given (no check that they exist)
    executor.gpus=null       no pinning at all: CUDA_VISIBLE_DEVICES is left as it is

Detection does not import torch (the launcher stays light); an explicit list is how tests exercise the
slots on a CPU machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Sequence

from schedsweep.errors import ConfigError

ENV = "CUDA_VISIBLE_DEVICES"
AUTO = "auto"


def visible() -> list[str]:
    """The CUDA devices this process may use: CUDA_VISIBLE_DEVICES when set (an empty value or -1 = none),
    else one per GPU that `nvidia-smi -L` lists, else none."""
    if ENV in os.environ:
        ids = [d.strip() for d in os.environ[ENV].split(",") if d.strip()]
        return [] if not ids or ids[0].startswith("-") else ids
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        text = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(line for line in text.splitlines() if line.startswith("GPU "))]


def check(value: Any) -> str | int | tuple[str, ...] | None:
    """executor.gpus typed: 'auto', a count >= 0, a list of device ids (ints or strings), or null."""
    if value is None or value == AUTO:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, (list, tuple)) and value and all(
            (isinstance(d, int) and not isinstance(d, bool) and d >= 0) or (isinstance(d, str) and d.strip()) for d in value):
        ids = tuple(str(d).strip() for d in value)
        if len(set(ids)) == len(ids):
            return ids
    raise ConfigError(f"executor.gpus must be 'auto', a count >= 0, a non-empty list of distinct device ids "
                      f"(e.g. [0,1,2,3]) or null; got {value!r}.")


def resolve(gpus: str | int | tuple[str, ...] | None) -> list[str]:
    """The device ids the pool may use (none: no pinning)."""
    if gpus is None:
        return []
    if isinstance(gpus, tuple):
        return list(gpus)
    found = visible()
    if gpus == AUTO:
        return found
    if gpus > len(found):
        raise ConfigError(f"executor.gpus={gpus}: this machine shows {len(found)} CUDA device(s) "
                          f"({', '.join(found) or 'none'}); give at most that many, or an explicit list.")
    return found[:gpus]


class Slots:
    """Devices x runs_per_gpu places; a holder takes `n` distinct devices, the least loaded first."""

    def __init__(self, devices: Sequence[str], runs_per_gpu: int) -> None:
        self.devices, self.per = list(devices), runs_per_gpu
        self.load = {d: 0 for d in self.devices}

    def capacity(self, n: int = 1) -> int:
        """How many holders of n devices each fit at once."""
        return len(self.devices) * self.per // n if n <= len(self.devices) else 0

    def take(self, n: int = 1) -> list[str] | None:
        free = sorted((load, i) for i, (d, load) in enumerate(self.load.items()) if load < self.per)
        if len(free) < n:
            return None
        chosen = [self.devices[i] for _, i in free[:n]]
        for d in chosen:
            self.load[d] += 1
        return chosen

    def give(self, held: Sequence[str]) -> None:
        for d in held:
            self.load[d] -= 1


def env(held: Sequence[str] | None) -> dict[str, str]:
    """The environment entries that pin a process to `held` (nothing when it holds no slot)."""
    return {ENV: ",".join(held)} if held else {}
