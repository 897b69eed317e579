"""Improved precision and recall (Kynkaanniemi et al. 2019): k-NN balls in feature space.

Precision: the fraction of generated samples inside the k-NN ball of at least one real sample.
Recall: the fraction of real samples inside the k-NN ball of at least one generated sample.
Distances are computed in row chunks with ``torch.cdist`` so memory stays O(chunk * N).
"""

from __future__ import annotations

import torch


def knn_radii(features: torch.Tensor, k: int = 3, chunk: int = 1024) -> torch.Tensor:
    """Distance of each sample to its k-th nearest neighbour in the same set (itself excluded)."""
    f = features.float()
    if f.shape[0] <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set")
    out = []
    for i in range(0, f.shape[0], chunk):
        d = torch.cdist(f[i:i + chunk], f)
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])  # position 0 is the sample itself
    return torch.cat(out)


def _coverage(manifold: torch.Tensor, radii: torch.Tensor, probes: torch.Tensor, chunk: int) -> float:
    inside = []
    for i in range(0, probes.shape[0], chunk):
        d = torch.cdist(probes[i:i + chunk], manifold)
        inside.append((d <= radii.unsqueeze(0)).any(dim=1))
    return float(torch.cat(inside).float().mean())


def precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = 3, chunk: int = 1024,
                     real_radii: torch.Tensor | None = None) -> tuple[float, float]:
    """(precision, recall) of ``fake`` against ``real`` features; pass cached ``real_radii`` to reuse them."""
    real, fake = real.float(), fake.float()
    r_real = knn_radii(real, k, chunk) if real_radii is None else real_radii
    r_fake = knn_radii(fake, k, chunk)
    precision = _coverage(real, r_real, fake, chunk)
    recall = _coverage(fake, r_fake, real, chunk)
    return precision, recall
