"""Multi-process training through `torchrun` (torch.distributed), no home-made launcher.

`torchrun --nproc_per_node N -m uniad_edge.train ...` sets RANK, WORLD_SIZE and LOCAL_RANK;
CUDA processes use NCCL on GPU LOCAL_RANK, CPU processes use gloo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import UniadError


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`cpu`, `cuda` (GPU LOCAL_RANK under torchrun) or `cuda:N`; one-line error without CUDA."""
    if name == "cpu":
        return torch.device("cpu")
    if not name.startswith("cuda"):
        raise UniadError(f"unknown device {name!r}; use cpu or cuda")
    if not torch.cuda.is_available():
        raise UniadError("--device cuda: no CUDA GPU is visible to PyTorch; use --device cpu")
    return torch.device(name if ":" in name else f"cuda:{local_rank}")


def setup(device_name: str) -> tuple[Dist, torch.device]:
    """Join the torchrun job if there is one; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), resolve_device(device_name)
    info = Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_name, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: Dist) -> None:
    if info.enabled:
        dist.barrier()


def mean_over_ranks(value: float, info: Dist, device: torch.device) -> float:
    if not info.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / info.world


def gather_rows(row: torch.Tensor, info: Dist, device: torch.device) -> torch.Tensor:
    """Stack one equally-shaped tensor per rank on the CPU: [world, ...]."""
    if not info.enabled:
        return row.unsqueeze(0).cpu()
    local = row.to(device)
    parts = [torch.empty_like(local) for _ in range(info.world)]
    dist.all_gather(parts, local)
    return torch.stack([p.cpu() for p in parts])
