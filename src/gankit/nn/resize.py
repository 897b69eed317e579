"""The baseline of super-resolution, shared by SinGAN's and SRGAN's comparisons and snapshots."""

from __future__ import annotations

from typing import Sequence

import torch
from torch.nn import functional as F


def bicubic(image: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Plain bicubic interpolation of (N, C, h, w) images in [-1, 1] to ``size`` (H, W), clamped."""
    return F.interpolate(image.float(), size=tuple(size), mode="bicubic", align_corners=False).clamp(-1, 1)
