"""Pieces of the training loop that are not the loop itself: one update, precision, the data position,
deferred metrics.

One update (`Updater`): the LR, accumulation, unscaling, clipping and the optimizer step, shared by the loop's
kept updates and an adaptive schedule's trials (schedsweep.train.trials).

Precision: `fp32` (no autocast), `bf16` (autocast to bfloat16, on CPU as on CUDA), `fp16` (autocast
to float16 with a GradScaler, whose state goes into the checkpoint).

Data position: a resumed run starts the task's stream at batch `step * accumulate`. A task whose
`batches` takes that start (`batches(start)`) jumps there; any other is replayed from batch 0,
with a warning naming how many batches.

Deferred metrics: a step's loss and gradient norms stay tensors until `Pending.read()` fetches all
the waiting steps in one transfer. On CUDA the loop reads every `log_every` steps (one host-device
synchronisation per window instead of three per step); on CPU a read costs nothing, so it reads
every step. The rows are the same either way; only when a divergence is noticed differs.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from schedsweep.errors import ConfigError
from schedsweep.train import distributed

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast for forward passes and, for fp16, loss scaling around backward and the optimizer step."""

    def __init__(self, name: str, device: torch.device) -> None:
        if name not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {name!r}.")
        self.dtype, self.device = PRECISIONS[name], device
        self.scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def unscale(self, parts: list[Any]) -> None:
        """Gradients back to their true scale, so the logged norms and clipping see the real gradient."""
        if self.scaler.is_enabled():
            for part in parts:
                self.scaler.unscale_(part)

    def step(self, parts: list[Any]) -> None:
        """Each optimizer steps (fp16: unless a gradient overflowed, then the scale shrinks)."""
        if not self.scaler.is_enabled():
            for part in parts:
                part.step()
            return
        for part in parts:
            self.scaler.step(part)
        self.scaler.update()


@dataclass
class Updater:
    """One optimizer update at a given LR multiplier: the loop's kept steps and a controller's trials
    (schedsweep.train.trials) both take it, so a trial step is exactly a training step.

    ``update(batches, factor)`` sets every group to ``peak_lr * factor``, accumulates, unscales, clips and
    steps; it returns (mean loss, gradient L2 norm, L1 norm) as tensors and the samples seen.
    """

    task: Any
    net: torch.nn.Module
    optimizer: Any
    precision: Precision
    params: list[torch.Tensor]
    clip: float | None
    dist: Any
    device: torch.device
    accumulate: int = 1

    def update(self, batches: Iterator[Any], factor: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        for group in self.optimizer.param_groups:
            group["lr"] = group["peak_lr"] * factor
        self.optimizer.zero_grad()
        loss_sum, n, accumulate, dist = None, 0, self.accumulate, self.dist
        for micro in range(accumulate):
            batch = distributed.to_device(distributed.shard(next(batches), dist), self.device)
            # DDP all-reduces gradients on the last micro-batch's backward only
            quiet = self.net.no_sync() if dist.world > 1 and micro < accumulate - 1 else contextlib.nullcontext()
            with quiet:
                with self.precision.autocast():
                    loss = self.task.loss(self.net, batch)
                self.precision.backward(loss / accumulate if accumulate > 1 else loss)
            loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
            n += _batch_size(batch) * dist.world
        assert loss_sum is not None
        mean_loss = loss_sum / accumulate if accumulate > 1 else loss_sum
        if dist.world > 1:
            mean_loss = mean_loss.double()
            torch.distributed.all_reduce(mean_loss)  # on the device: no host synchronisation
            mean_loss /= dist.world
        self.precision.unscale(self.optimizer.parts)
        grads = [p.grad for p in self.params if p.grad is not None]
        l2 = torch.nn.utils.get_total_norm(grads, 2.0)
        l1 = torch.nn.utils.get_total_norm(grads, 1.0)
        if self.clip is not None:
            torch.nn.utils.clip_grads_with_norm_(self.params, self.clip, l2)
        self.precision.step(self.optimizer.parts)
        return mean_loss, l2, l1, n


def _batch_size(batch: Any) -> int:
    """Samples in a batch: the leading dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    return 1


def read_every(device: torch.device, log_every: int) -> int:
    """Steps between metric reads: `log_every` on CUDA, every step on CPU (a read there is free)."""
    return log_every if device.type == "cuda" else 1


def batch_stream(task: Any, start: int) -> Iterator[Any]:
    """The task's batches from batch `start` on: task.batches(start) if it takes one, else a replay."""
    if _takes_start(task.batches):
        return task.batches(start)
    stream = task.batches()
    if start:
        warnings.warn(
            f"task {type(task).__name__}: batches() takes no start, so resuming replays {start} batches "
            f"from the beginning of its stream; define batches(self, start: int = 0) to jump there.",
            stacklevel=2,
        )
        for _ in range(start):
            next(stream)
    return stream


def _takes_start(method: Any) -> bool:
    try:
        return len(inspect.signature(method).parameters) >= 1
    except (TypeError, ValueError):
        return False


@dataclass
class Pending:
    """Rows whose loss and gradient norms are still tensors (on the device), read in one transfer."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)  # [loss, L2, L1] per row, float64
    since: float = field(default_factory=time.perf_counter)  # when the first waiting step began

    def add(self, row: dict[str, Any], loss: torch.Tensor, l2: torch.Tensor, l1: torch.Tensor) -> None:
        self.rows.append(row)
        self.values.append(torch.stack([loss.double(), l2.double(), l1.double()]))

    def read(self) -> tuple[list[dict[str, Any]], int | None]:
        """(the waiting rows with numbers filled in, the index of the first non-finite loss or None).

        The rows after a non-finite loss are dropped and that row keeps only its loss, as a step that
        stops the run is logged. samples_per_s is the window's throughput (one figure per read).
        """
        if not self.rows:
            return [], None
        numbers = torch.stack(self.values).tolist()  # the one synchronisation
        elapsed = time.perf_counter() - self.since
        rate = sum(r["samples"] for r in self.rows) / elapsed if elapsed > 0 else None
        rows, bad = [], None
        for i, (row, (loss, l2, l1)) in enumerate(zip(self.rows, numbers)):
            row = {k: v for k, v in row.items() if k != "samples"} | {"loss": loss}
            if not math.isfinite(loss):
                rows.append(row)
                bad = i
                break
            rows.append(row | {"grad_norm": l2, "grad_norm_l1": l1, "samples_per_s": rate})
        self.rows, self.values, self.since = [], [], time.perf_counter()
        return rows, bad
