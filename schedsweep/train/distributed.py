"""torch.distributed for one run over several processes (Slurm tasks or submitit local tasks).

Every rank draws the same global batch from the task and trains on its own contiguous shard;
DistributedDataParallel averages the gradients, so with equal shards the update equals the
single-process update on the global batch. Rank 0 alone writes metrics, checkpoints and status.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """Whether any rank raised `flag`: every rank takes the same branch at a step boundary."""
        return any_rank(flag) if self.world > 1 else flag


def any_rank(flag: bool) -> bool:
    """Whether any process of the initialised process group raised `flag` (just `flag` without one): the
    built-in loop (Dist.any) and a user's script (schedsweep.client: Run.should_stop) both ask here."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    # NCCL reduces CUDA tensors only, each rank's on its own GPU (cuda:LOCAL_RANK, as the loop places the
    # model); gloo CPU ones.
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
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


def map_tensors(batch: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    """`fn` applied to every tensor of a batch (a tensor, or dicts, lists and tuples of them)."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, dict):
        return {k: map_tensors(v, fn) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(map_tensors(v, fn) for v in batch)
    return batch


def shard(batch: Any, dist: Dist) -> Any:
    """This rank's contiguous slice of every tensor in the batch (along dim 0)."""
    if dist.world == 1:
        return batch

    def mine(t: torch.Tensor) -> torch.Tensor:
        if t.shape[0] % dist.world:
            raise ValueError(f"batch of {t.shape[0]} samples cannot be split evenly over {dist.world} ranks")
        size = t.shape[0] // dist.world
        return t[dist.rank * size : (dist.rank + 1) * size]

    return map_tensors(batch, mine)


def to_device(batch: Any, device: torch.device) -> Any:
    return map_tensors(batch, lambda t: t.to(device, non_blocking=True))
