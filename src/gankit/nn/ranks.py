"""What a family's step needs to know of a torchrun job: whether there is one, and a mean over its
processes (the engine's :mod:`gankit.engine.runtime` sets the job up; these only read it)."""

from __future__ import annotations

import torch
import torch.distributed as dist


def distributed() -> bool:
    """True inside a torchrun job of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def mean_across_ranks(value: torch.Tensor) -> torch.Tensor:
    """``value`` averaged over the job's processes (itself in one process): a statistic that every
    rank then holds alike, so rank 0's checkpoint resumes every rank exactly."""
    if not distributed():
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()
