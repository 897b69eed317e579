"""The DCGAN convolution stacks (Radford, Metz & Chintala 2015, §3 and Fig. 1), for any
power-of-two resolution >= 8: strided (transposed) convolutions and no pooling, BatchNorm in
both nets except G's output and D's input layers, ReLU/Tanh in G, LeakyReLU(0.2) in D.
At 64x64 with ngf = ndf = 64 and nz = 100 these are the layers of the reference PyTorch
example (pytorch/examples dcgan), whose D ends in a Sigmoid; ours returns the logit and the
loss applies the sigmoid in its numerically stable softplus form. The layers are torch's,
subclassed for speed where oneDNN is slow: :mod:`gankit.nn.strided_conv` (the strided layers
next to 4x4, in bf16 on the CPU) and :mod:`gankit.nn.dense_conv` (G's first and D's last layer).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.nn.dense_conv import Dense4x4, Project4x4
from gankit.nn.strided_conv import StridedConv2d, StridedConvTranspose2d


def num_upsamplings(resolution: int) -> int:
    """4x4 -> resolution takes log2(resolution / 4) doublings."""
    if resolution < 8 or resolution & (resolution - 1):
        raise GankitError(f"DCGAN-style networks need a power-of-two resolution >= 8, got {resolution}")
    return int(math.log2(resolution)) - 2


def generator_stack(in_channels: int, ngf: int, out_channels: int, resolution: int) -> nn.Sequential:
    """(N, in_channels, 1, 1) -> (N, out_channels, R, R) in [-1, 1]."""
    n = num_upsamplings(resolution)
    width = ngf * 2 ** (n - 1)
    layers: list[nn.Module] = [  # state size: (ngf * 2^(n-1)) x 4 x 4
        Project4x4(in_channels, width), nn.BatchNorm2d(width), nn.ReLU(True)]
    for _ in range(n - 1):  # each block doubles the size and halves the width
        layers += [StridedConvTranspose2d(width, width // 2), nn.BatchNorm2d(width // 2),
                   nn.ReLU(True)]
        width //= 2
    layers += [StridedConvTranspose2d(width, out_channels), nn.Tanh()]  # R x R
    return nn.Sequential(*layers)


D_NORMS = ("batch", "layer", "none")


def _norm(kind: str, width: int) -> list[nn.Module]:
    """D's normalisation layer: BatchNorm (DCGAN), layer norm over (C, H, W) as GroupNorm with one
    group (the WGAN-GP critic's drop-in for BatchNorm, Gulrajani et al. 2017, §4), or none
    (with spectral norm, Miyato et al. 2018)."""
    if kind == "batch":
        return [nn.BatchNorm2d(width)]
    if kind == "layer":
        return [nn.GroupNorm(1, width)]
    if kind == "none":
        return []
    raise GankitError(f"unknown discriminator norm {kind!r}; choose from {', '.join(D_NORMS)}")


def discriminator_stack(in_channels: int, ndf: int, resolution: int, norm: str = "batch") -> nn.Sequential:
    """(N, in_channels, R, R) -> (N, 1, 1, 1) logits."""
    n = num_upsamplings(resolution)
    layers: list[nn.Module] = [  # no normalisation on the input layer (§3)
        StridedConv2d(in_channels, ndf), nn.LeakyReLU(0.2, inplace=True)]
    width = ndf  # state size: ndf x R/2 x R/2
    for _ in range(n - 1):
        layers += [StridedConv2d(width, width * 2), *_norm(norm, width * 2),
                   nn.LeakyReLU(0.2, inplace=True)]
        width *= 2
    layers += [Dense4x4(width, 1)]  # 4x4 -> 1x1 logit
    return nn.Sequential(*layers)


@torch.no_grad()
def dcgan_init(module: nn.Module) -> None:
    """Weights ~ N(0, 0.02); BatchNorm scale ~ N(1, 0.02), shift 0 (§4)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0)
