"""The networks of ProGAN: Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs for
Improved Quality, Stability, and Variation" (arXiv:1710.10196).

Both networks are built for the target resolution R from the start and grow by *using* more of
their blocks (§3, Fig. 1): at stage s they work at r = 4 * 2^s pixels. Their input and output
always have the full size R x R, so shapes never change during training: G upsamples its
r x r image (nearest neighbour), D average-pools its input down to r x r, as the reference
code's 'recursive' structure does. The stage and the fade-in weight alpha live in two buffers
of each network (``stage``, ``alpha``), so checkpoints carry them, the EMA generator copies them,
and a loaded generator samples at the stage it was trained to.

A new block fades in (§3, Fig. 2): G's image is lerp(upsampled toRGB of the previous block,
toRGB of the new block, alpha), D's features lerp(fromRGB of the half-size image, the new
block's output, alpha); :func:`fade_reals` shows real images to D the same way.

Layers (§4, App. A.1, Table 2): equalized learning rate everywhere, leaky ReLU 0.2, pixelwise
feature normalisation after every conv of G (and on z), minibatch standard deviation before
D's last block. Widths follow the reference code: ``min(fmap_max, fmap_base / r)`` channels
at resolution r.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankit.nn.equalized import EqualConv2d, EqualLinear, lrelu, minibatch_stddev, pixel_norm


def num_stages(resolution: int) -> int:
    """Stages from 4x4 to ``resolution`` (a power of two >= 4): 16 px -> 3 (4, 8, 16)."""
    return resolution.bit_length() - 2


def stage_resolution(stage: int) -> int:
    return 4 << stage


def stage_channels(resolution: int, fmap_base: int, fmap_max: int) -> int:
    """Feature maps at ``resolution``: min(fmap_max, fmap_base / resolution), at least 1."""
    return max(1, min(fmap_max, fmap_base // resolution))


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, H) -> (N, C, size, size): box-filter downsampling (average pooling, the
    reference's ``downscale2d``) or nearest-neighbour upsampling (its ``upscale2d``)."""
    h = x.shape[-1]
    if size < h:
        return F.avg_pool2d(x, h // size)
    if size > h:
        return F.interpolate(x, scale_factor=size // h, mode="nearest")
    return x


def fade_reals(x: torch.Tensor, stage: int, alpha: float) -> torch.Tensor:
    """Real images as D sees them at ``stage``: reduced to r x r, and during a fade (alpha < 1)
    lerped with their r/2 version, as the reference code's ``process_reals`` (FadeLOD,
    UpscaleLOD); then back to full size. (N, C, R, R) -> (N, C, R, R)."""
    full, r = x.shape[-1], stage_resolution(stage)
    x = resize(x, r)  # (N, C, r, r)
    if stage > 0 and alpha < 1:
        x = torch.lerp(resize(resize(x, r // 2), r), x, alpha)
    return resize(x, full)


class _Progress(nn.Module):
    """The ``stage`` (int64) and ``alpha`` (float32, 1 outside fades) buffers of a growing network."""

    def __init__(self):
        super().__init__()
        self.register_buffer("stage", torch.zeros((), dtype=torch.long))
        self.register_buffer("alpha", torch.ones(()))

    def set_progress(self, stage: int, alpha: float) -> None:
        self.stage.fill_(stage)
        self.alpha.fill_(alpha)

    def progress(self) -> tuple[int, float]:
        """(stage, alpha) as Python numbers (one host read each on a GPU)."""
        return int(self.stage), float(self.alpha)


class GBlock(nn.Module):
    """Upsample x2 (nearest), then twice conv 3x3 -> lrelu -> pixel norm (Table 2).
    (N, c_in, r, r) -> (N, c_out, 2r, 2r)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv0 = EqualConv2d(c_in, c_out, 3, activation="lrelu")
        self.conv1 = EqualConv2d(c_out, c_out, 3, activation="lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return pixel_norm(self.conv1(pixel_norm(self.conv0(x))))


class GInput(nn.Module):
    """z (N, nz) -> pixel norm -> dense to 4x4 -> lrelu -> pixel norm -> conv 3x3 -> lrelu ->
    pixel norm: (N, c, 4, 4). Table 2's "Conv 4x4" on the 1x1 latent is this dense layer, with
    one bias per channel (512 x 8192 + 512 = 4.2M weights in the paper)."""

    def __init__(self, nz: int, c: int):
        super().__init__()
        self.dense = EqualLinear(nz, c * 16, bias=False)
        self.bias = nn.Parameter(torch.zeros(c))
        self.conv = EqualConv2d(c, c, 3, activation="lrelu")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(pixel_norm(z)).view(z.shape[0], -1, 4, 4)  # (N, c, 4, 4)
        x = pixel_norm(lrelu(x + self.bias[:, None, None]))
        return pixel_norm(self.conv(x))


class ProGenerator(_Progress):
    """z (N, nz) -> images (N, channels, R, R), linear output (no tanh: Table 2's toRGB is a
    linear 1x1 conv). ``blocks[s]`` makes the 4 * 2^s image's features, ``to_rgb[s]`` its image."""

    def __init__(self, nz: int, channels: int, resolution: int, fmap_base: int, fmap_max: int):
        super().__init__()
        self.resolution = resolution
        width = [stage_channels(stage_resolution(s), fmap_base, fmap_max) for s in range(num_stages(resolution))]
        self.blocks = nn.ModuleList([GInput(nz, width[0])] +
                                    [GBlock(a, b) for a, b in zip(width[:-1], width[1:])])
        self.to_rgb = nn.ModuleList([EqualConv2d(c, channels, 1) for c in width])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        stage, alpha = self.progress()
        x = self.blocks[0](z)  # (N, c_0, 4, 4)
        for block in self.blocks[1:stage]:
            x = block(x)  # up to (N, c_{s-1}, r/2, r/2)
        if stage == 0:
            return resize(self.to_rgb[0](x), self.resolution)
        y = self.blocks[stage](x)  # (N, c_s, r, r)
        img = self.to_rgb[stage](y)
        if alpha < 1:  # fade in the new block (Fig. 2b)
            img = torch.lerp(resize(self.to_rgb[stage - 1](x), img.shape[-1]), img, alpha)
        return resize(img, self.resolution)  # (N, channels, R, R)


class DBlock(nn.Module):
    """Conv 3x3 -> lrelu, conv 3x3 -> lrelu, average pool x2 (Table 2).
    (N, c_in, 2r, 2r) -> (N, c_out, r, r)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv0 = EqualConv2d(c_in, c_in, 3, activation="lrelu")
        self.conv1 = EqualConv2d(c_in, c_out, 3, activation="lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv1(self.conv0(x)), 2)


class DOutput(nn.Module):
    """Minibatch stddev -> conv 3x3 -> lrelu -> dense 4x4 -> lrelu -> dense to 1 (linear).
    (N, c, 4, 4) -> (N,)."""

    def __init__(self, c: int, mbstd_group: int):
        super().__init__()
        self.mbstd_group = mbstd_group
        self.conv = EqualConv2d(c + 1, c, 3, activation="lrelu")
        self.dense = EqualLinear(c * 16, c, activation="lrelu")
        self.out = EqualLinear(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(minibatch_stddev(x, self.mbstd_group))  # (N, c + 1, 4, 4) -> (N, c, 4, 4)
        return self.out(self.dense(x.flatten(1))).flatten()


class ProDiscriminator(_Progress):
    """images (N, channels, R, R) -> critic values (N,). ``from_rgb[s]`` reads the 4 * 2^s image,
    ``blocks[s]`` halves it (``blocks[0]`` is the 4x4 output block)."""

    def __init__(self, channels: int, resolution: int, fmap_base: int, fmap_max: int, mbstd_group: int = 4):
        super().__init__()
        width = [stage_channels(stage_resolution(s), fmap_base, fmap_max) for s in range(num_stages(resolution))]
        self.from_rgb = nn.ModuleList([EqualConv2d(channels, c, 1, activation="lrelu") for c in width])
        self.blocks = nn.ModuleList([DOutput(width[0], mbstd_group)] +
                                    [DBlock(b, a) for a, b in zip(width[:-1], width[1:])])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stage, alpha = self.progress()
        x = resize(x, stage_resolution(stage))  # (N, channels, r, r)
        h = self.from_rgb[stage](x)
        if stage > 0:
            h = self.blocks[stage](h)  # (N, c_{s-1}, r/2, r/2)
            if alpha < 1:  # the new block fades in (Fig. 2b, mirrored)
                h = torch.lerp(self.from_rgb[stage - 1](F.avg_pool2d(x, 2)), h, alpha)
            for block in self.blocks[stage - 1:0:-1]:
                h = block(h)  # down to (N, c_0, 4, 4)
        return self.blocks[0](h)


def final_network_parameters(net: ProGenerator | ProDiscriminator) -> int:
    """Parameters of the fully grown network, Table 2's count: every block, and only the last
    toRGB / fromRGB (the others serve the earlier stages and fade-ins only)."""
    rgb = net.to_rgb if isinstance(net, ProGenerator) else net.from_rgb
    return sum(p.numel() for p in net.blocks.parameters()) + sum(p.numel() for p in rgb[-1].parameters())
