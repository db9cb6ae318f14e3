"""Multi-process training through PyTorch DDP, driven by the environment ``torchrun`` sets.

Launched as ``torchrun --nproc_per_node N $(which darklens) train ...``, every process reads
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; :func:`init_distributed` then joins the process group
(NCCL on CUDA, Gloo on CPU). A plain launch is a world of one and touches no process group.
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job; ``owns_group`` if it initialised the process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the torchrun environment (0, 1, 0 if absent)."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def init_distributed(use_cuda: bool) -> DistContext:
    """Join the torchrun process group if this is a multi-process launch."""
    rank, world_size, local_rank = env_world()
    if world_size <= 1:
        return DistContext()
    if dist.is_initialized():
        return DistContext(rank, world_size, local_rank, owns_group=False)
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(rank, world_size, local_rank, owns_group=True)


def shutdown(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Element-wise sum of ``values`` over all processes (returned, not in place)."""
    if not ctx.active:
        return values
    total = values.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def all_gather_rows(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate equally shaped tensors from all processes along the first axis, rank order."""
    if not ctx.active:
        return values
    parts = [torch.empty_like(values) for _ in range(ctx.world_size)]
    dist.all_gather(parts, values.contiguous())
    return torch.cat(parts)


def broadcast_buffers(module: torch.nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every process, in place.

    DDP syncs buffers at the start of each training forward, so after the last step every rank
    holds statistics updated with its own batch; evaluation must use the ones rank 0 saves.
    """
    if not ctx.active:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)
