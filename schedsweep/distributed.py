"""torch.distributed for one run over several processes (Slurm tasks or submitit local tasks).

Every rank draws the same global batch from the task and trains on its own contiguous shard;
DistributedDataParallel averages the gradients, so with equal shards the update equals the
single-process update on the global batch. Rank 0 alone writes metrics, checkpoints and status.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def any(self, flag: bool) -> bool:
        """Whether any rank raised `flag`: every rank takes the same branch at a step boundary."""
        if self.world == 1:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int32)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())


def world_size_from_env() -> int:
    for key in ("SUBMITIT_LOCAL_NTASKS", "SLURM_NTASKS", "WORLD_SIZE"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 1


def setup() -> Dist:
    """Join the process group when the job has several tasks (env:// from submitit's helper)."""
    if world_size_from_env() <= 1:
        return Dist()
    if not torch.distributed.is_initialized():
        import submitit

        env = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)
    return Dist(torch.distributed.get_rank(), torch.distributed.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def teardown(dist: Dist) -> None:
    if dist.world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def shard(batch: Any, dist: Dist) -> Any:
    """This rank's contiguous slice of every tensor in the batch (along dim 0)."""
    if dist.world == 1:
        return batch
    if isinstance(batch, torch.Tensor):
        n = batch.shape[0]
        if n % dist.world:
            raise ValueError(f"batch of {n} samples cannot be split evenly over {dist.world} ranks")
        size = n // dist.world
        return batch[dist.rank * size : (dist.rank + 1) * size]
    if isinstance(batch, dict):
        return {k: shard(v, dist) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(shard(v, dist) for v in batch)
    return batch


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
