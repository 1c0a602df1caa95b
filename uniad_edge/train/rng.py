"""RNG state as plain tensors, so `--resume` continues the exact random stream.

Checkpoints are read with weights_only=True, so states are stored as uint8 tensors (never numpy
or Python random objects). The batch order does not need saving: each epoch's permutation is
drawn from a generator seeded by (seed, epoch).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .distributed import Dist, gather_rows


def seed_process(seed: int, info: Dist) -> None:
    """Distinct jitter/dropout streams per rank, reproducible from the seed."""
    torch.manual_seed(seed + info.rank)


def capture(info: Dist, device: torch.device) -> dict[str, Tensor]:
    """CPU (and this GPU's) generator state of every rank: {"cpu": [world, L], "cuda": ...}."""
    state = {"cpu": gather_rows(torch.get_rng_state(), info, device)}
    if device.type == "cuda":
        state["cuda"] = gather_rows(torch.cuda.get_rng_state(device), info, device)
    return state


def restore(state: dict[str, Tensor], info: Dist, device: torch.device) -> bool:
    """Put this rank's saved state back; False when the world size changed (then reseed)."""
    cpu = state.get("cpu")
    if cpu is None or cpu.shape[0] != info.world:
        return False
    torch.set_rng_state(cpu[info.rank].to(torch.uint8))
    cuda = state.get("cuda")
    if device.type == "cuda" and cuda is not None:
        torch.cuda.set_rng_state(cuda[info.rank].to(torch.uint8), device)
    return True


def epoch_order(count: int, seed: int, epoch: int, info: Dist) -> Tensor:
    """This rank's share of a per-epoch permutation, padded so every rank gets equal batches."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(count, generator=generator)
    per_rank = -(-count // info.world)
    padded = torch.cat([order, order[: per_rank * info.world - count]])
    return padded[info.rank :: info.world]
