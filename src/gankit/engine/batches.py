"""A deterministic, resumable order of training batches.

Batch k is a pure function of (seed, k, rank): the index stream is the concatenation of one
random permutation per epoch, and global batch k takes the next ``batch_size * world_size``
positions of it; each rank takes its own slice (data sharding as DistributedSampler does).
Nothing but the count of batches drawn needs saving to resume the exact data order, and a
dataset smaller than one batch simply spans several epochs.
"""

from __future__ import annotations

import torch

from gankit.engine.runtime import derive_seed


class BatchOrder:
    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self._perms: dict[int, torch.Tensor] = {}

    def permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            gen = torch.Generator().manual_seed(derive_seed(self.seed, 0x0DA7A, epoch))
            self._perms[epoch] = torch.randperm(self.n, generator=gen)
        return self._perms[epoch]

    def epoch_of(self, k: int) -> float:
        return k * self.batch_size * self.world_size / self.n

    def indices(self, k: int) -> torch.Tensor:
        """This rank's dataset indices for global batch ``k``."""
        start = (k * self.world_size + self.rank) * self.batch_size
        positions = torch.arange(start, start + self.batch_size)
        epochs, offsets = positions // self.n, positions % self.n
        out = torch.empty(self.batch_size, dtype=torch.long)
        for e in epochs.unique().tolist():
            mask = epochs == e
            out[mask] = self.permutation(e)[offsets[mask]]
        return out
