"""A deterministic, resumable order of training batches.

Batch k is a pure function of (seed, k, rank): the index stream is the concatenation of one
random permutation per epoch, and global batch k takes the next ``batch_size * world_size``
positions of it; each rank takes its own slice (data sharding as DistributedSampler does).
Nothing but the count of batches drawn and the stream position they reached needs saving to
resume the exact data order, and a dataset smaller than one batch simply spans several epochs.
A run resumed with another number of processes (or batch size) goes on from the position
reached (:meth:`BatchOrder.resume_at`): the images after it, none twice, none skipped.
"""

from __future__ import annotations

import torch

from gankit.engine.runtime import derive_seed


class BatchOrder:
    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self._perms: dict[int, torch.Tensor] = {}
        self.k0, self.origin = 0, 0  # global batch k0 starts at stream position origin

    def resume_at(self, k: int, position: int) -> None:
        """Global batch ``k`` starts at ``position`` of the stream (the images drawn before it,
        over all processes, by whatever process count and batch size drew them)."""
        self.k0, self.origin = int(k), int(position)

    def position(self, k: int) -> int:
        """Stream position where global batch ``k`` starts: images drawn before it, by all ranks."""
        return self.origin + (k - self.k0) * self.batch_size * self.world_size

    def permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            gen = torch.Generator().manual_seed(derive_seed(self.seed, 0x0DA7A, epoch))
            self._perms[epoch] = torch.randperm(self.n, generator=gen)
        return self._perms[epoch]

    def epoch_of(self, k: int) -> float:
        return self.position(k) / self.n

    def indices(self, k: int) -> torch.Tensor:
        """This rank's dataset indices for global batch ``k``."""
        start = self.position(k) + self.rank * self.batch_size
        positions = torch.arange(start, start + self.batch_size)
        epochs, offsets = positions // self.n, positions % self.n
        out = torch.empty(self.batch_size, dtype=torch.long)
        for e in epochs.unique().tolist():
            mask = epochs == e
            out[mask] = self.permutation(e)[offsets[mask]]
        return out
