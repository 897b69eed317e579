"""SRGAN's networks: Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network" (arXiv:1609.04802), Fig. 4.

The generator (SRResNet) works at the low resolution throughout: a 9x9 convolution, B residual
blocks (3x3 conv, BN, PReLU, 3x3 conv, BN, plus the input) with one long skip around them, then
one sub-pixel convolution (Shi et al. 2016: a 3x3 conv to 4x the channels and a PixelShuffle)
per factor 2 of the scale, and a last 9x9 convolution to the image. Being fully convolutional it
upscales any size. The discriminator is the paper's VGG-style net: eight 3x3 convolutions
(64 -> 512 channels, stride 2 every other one, BN and LeakyReLU 0.2) and two dense layers.

``batch_norm=False`` drops the generator's BN layers, as EDSR (Lim et al. 2017, §3.1) and
ESRGAN (Wang et al. 2018, §3.1) found better for super-resolution: BN's batch statistics differ
between training crops and test images and leave artefacts; without it the net is also faster.

``global_skip=True`` adds the bicubic upscale of the input to the output, so the net learns only
the residual (VDSR's global residual learning, Kim et al. 2016, §3.1): it starts at bicubic's
quality instead of below it, which matters for the short CPU presets. The sub-pixel convolutions
start by ICNR (Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution"): each
group of 4 output channels begins equal, so the PixelShuffle starts as a nearest-neighbour
upscale and no checkerboard has to be unlearned.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, k // 2)


class ResidualBlock(nn.Module):
    """k3n64s1 conv, BN, PReLU, k3n64s1 conv, BN, plus the input (Fig. 4, top)."""

    def __init__(self, nf: int, batch_norm: bool = True):
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(nf)) if batch_norm else nn.Identity
        self.body = nn.Sequential(conv(nf, nf), norm(), nn.PReLU(nf), conv(nf, nf), norm())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """Low-resolution image ``(N, C, h, w)`` in [-1, 1] -> ``(N, C, scale*h, scale*w)``, linear output."""

    def __init__(self, channels: int = 3, nf: int = 64, n_blocks: int = 16, scale: int = 4, batch_norm: bool = True,
                 global_skip: bool = False):
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"scale must be a power of two >= 2, got {scale}")
        self.scale, self.global_skip = scale, global_skip
        self.head = nn.Sequential(conv(channels, nf, 9), nn.PReLU(nf))
        self.body = nn.Sequential(*[ResidualBlock(nf, batch_norm) for _ in range(n_blocks)], conv(nf, nf),
                                  nn.BatchNorm2d(nf) if batch_norm else nn.Identity())
        ups = []
        for _ in range(int(math.log2(scale))):
            ups += [conv(nf, 4 * nf), nn.PixelShuffle(2), nn.PReLU(nf)]
        self.upsample = nn.Sequential(*ups)
        self.tail = conv(nf, channels, 9)
        for m in self.upsample:
            if isinstance(m, nn.Conv2d):
                icnr_(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        out = self.tail(self.upsample(h + self.body(h)))
        if self.global_skip:
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out


@torch.no_grad()
def icnr_(conv: nn.Conv2d, factor: int = 2) -> nn.Conv2d:
    """ICNR (Aitken et al. 2017): a sub-pixel conv ``(factor^2 * c, cin, k, k)`` whose
    ``factor^2`` outputs that PixelShuffle puts into one block start equal (weights as a
    default-initialised conv to ``c`` channels, zero bias), so the shuffle starts as a
    nearest-neighbour upscale."""
    sub = nn.Conv2d(conv.in_channels, conv.out_channels // factor**2, conv.kernel_size)
    conv.weight.copy_(sub.weight.repeat_interleave(factor**2, dim=0))
    if conv.bias is not None:
        conv.bias.zero_()
    return conv


class SRDiscriminator(nn.Module):
    """High-resolution crop ``(N, C, crop, crop)`` -> one logit per image (Fig. 4, bottom)."""

    def __init__(self, channels: int = 3, crop: int = 96, ndf: int = 64, dense: int = 1024):
        super().__init__()
        if crop % 16:
            raise ValueError(f"the discriminator halves the crop four times: crop must be a multiple of 16, got {crop}")
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        layers = [conv(channels, ndf), act()]
        cin = ndf
        for i, cout in enumerate([ndf, 2 * ndf, 2 * ndf, 4 * ndf, 4 * ndf, 8 * ndf, 8 * ndf]):
            layers += [conv(cin, cout, 3, 2 if i % 2 == 0 else 1), nn.BatchNorm2d(cout), act()]
            cin = cout
        self.features = nn.Sequential(*layers)
        side = crop // 16
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(cin * side * side, dense), act(), nn.Linear(dense, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).flatten()
