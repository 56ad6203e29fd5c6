"""The process group: one process, or torchrun's several (gloo on CPU, nccl with CUDA)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger("training")


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def init_distributed() -> Dist:
    """torchrun sets WORLD_SIZE/RANK; gloo on CPU, nccl when CUDA is there."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return Dist(dist.get_rank(), dist.get_world_size())


def device_for(d: Dist) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def check_in_sync(model: nn.Module, d: Dist) -> None:
    """Every rank must end with the same weights; a silent divergence would make rank 0's files lie."""
    flat = torch.cat([p.detach().float().flatten().cpu() for p in model.parameters()])
    mine = torch.stack([flat.sum(), flat.square().sum(), (flat * torch.arange(len(flat)) / len(flat)).sum()])
    gathered = [torch.zeros_like(mine) for _ in range(d.world)]
    dist.all_gather(gathered, mine)
    for r, theirs in enumerate(gathered):
        if not torch.allclose(theirs, gathered[0], rtol=1e-5, atol=1e-6):
            raise RuntimeError(f"rank {r} weights differ from rank 0 ({theirs.tolist()} vs {gathered[0].tolist()})")
    log.info("weights in sync across %d ranks", d.world)


def destroy(d: Dist) -> None:
    if d.active:
        dist.destroy_process_group()
