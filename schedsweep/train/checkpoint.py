"""Checkpoints: everything a run needs to continue exactly where it stopped.

The step is the only schedule state, so a checkpoint holds the model, the optimizer(s), the fp16
loss scaler, the next step, the RNG states and the loop's running numbers. The data position is
the step itself: the task's deterministic batch stream restarts at batch step x accumulate
(schedsweep.train.loop.batch_stream). `parts` records how many
metric part files existed when the checkpoint was taken; parts written after it are deleted on
resume, so the metrics never hold a step twice.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from schedsweep import files
from schedsweep.sweep.run_folder import RunFolder


def rng_state() -> dict[str, Any]:
    """The torch, Python (and CUDA) RNG states: what restore_rng puts back."""
    import torch  # in each function, not at the top: schedsweep.client loads no torch for a fresh run

    return ({"torch": torch.get_rng_state(), "python": random.getstate()}
            | ({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}))


def save(run_path: Path, state: dict[str, Any]) -> None:
    import torch

    state = state | {"rng": rng_state()}
    with files.replacing(RunFolder(run_path).checkpoint) as tmp:
        torch.save(state, tmp)


def load(run_path: Path) -> dict[str, Any] | None:
    path = RunFolder(run_path).checkpoint
    if not path.exists():
        return None
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def step(run_path: Path) -> int | None:
    """The step the run resumes from, None without a checkpoint; memory-mapped: the tensors are not read."""
    path = RunFolder(run_path).checkpoint
    if not path.exists():
        return None
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=False, mmap=True)["step"])


def restore_rng(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["rng"]["torch"])
    random.setstate(state["rng"]["python"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])


def remove(run_path: Path) -> None:
    RunFolder(run_path).checkpoint.unlink(missing_ok=True)
