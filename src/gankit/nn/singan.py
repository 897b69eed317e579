"""Building blocks of SinGAN: Shaham, Dekel & Michaeli 2019, "SinGAN: Learning a Generative Model
from a Single Natural Image" (ICCV 2019, arXiv:1905.01164).

One image, a pyramid of scales x_0 (coarsest) ... x_N (finest), and at every scale n a small
fully convolutional GAN (§2, Fig. 4): G_n and D_n are five 3x3 convs of one width, the first
four in blocks (conv, BatchNorm, LeakyReLU 0.2), so their receptive field is 11x11 pixels at every
scale; D_n is a patch critic trained with WGAN-GP (§2.2, supplementary). Between scales the image grows by
1/r, where r ~ 0.75 (§2.1).

This module holds what a trainer needs and nothing of the loop itself:

- :func:`pyramid`: the scale sizes, by the rules of the authors' ``adjust_scales2image`` and
  ``creat_reals_pyramid`` (tamarott/SinGAN), rounding included;
- :func:`channels_at`: the width of each scale (32, doubling every 4 scales, at most 128);
- :class:`SinGANGenerator`, :class:`SinGANDiscriminator`: G_n and D_n; their ``state_dict`` keys
  are those of the authors' ``GeneratorConcatSkip2CleanAdd`` / ``WDiscriminator``;
- :func:`upsample`: the resize between scales;
- :func:`estimate_peak_bytes`: a conservative memory bound, so a trainer can refuse an image
  too large before it starts.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError

KERNEL = 3  # every conv is 3x3, stride 1, unpadded (supplementary, "Architecture")
FLOAT_BYTES = 4  # float32 training


@dataclass(frozen=True)
class Pyramid:
    """The scales of one image: ``sizes[0]`` the coarsest (H, W), ``sizes[-1]`` the finest (the
    image once fitted into ``max_size``); ``scale_factor`` is the re-fitted ratio r between
    neighbouring scales (the requested one, adjusted so the steps are even)."""

    sizes: tuple[tuple[int, int], ...]
    scale_factor: float

    def __len__(self) -> int:
        return len(self.sizes)


def pyramid(height: int, width: int, *, min_size: int = 25, max_size: int = 250,
            scale_factor: float = 0.75) -> Pyramid:
    """The (H, W) of every scale for a ``height`` x ``width`` image, coarsest first.

    The authors' rule (``adjust_scales2image``, ``creat_reals_pyramid`` and the output shape of
    their ``imresize``), with s = ``scale_factor`` and logs to base s:

    1. n = ceil(log(min_size / min(H, W))) + 1 and k = ceil(log(min(max_size, max(H, W)) / max(H, W)))
       (k > 0 only for an image larger than ``max_size``); the finest scale has index N = n - k.
    2. The image is shrunk, never enlarged, by q = min(max_size / max(H, W), 1) to
       (H', W') = (ceil(q H), ceil(q W)).
    3. The ratio is re-fitted so that N steps lead from min(H', W') to exactly min_size:
       r = (min_size / min(H', W'))^(1 / N).
    4. Scale i (0..N) is (ceil(H' r^(N-i)), ceil(W' r^(N-i))), each computed from (H', W').

    n and k are computed from the *original* size, so a 1000x750 photo gets one scale fewer than
    the same photo saved at 250x188; the float arithmetic is theirs too, so the sizes match
    their pyramids pixel for pixel.
    """
    if not (isinstance(height, numbers.Integral) and isinstance(width, numbers.Integral)) or min(height, width) <= 0:
        raise GankitError(f"image sizes must be positive whole numbers of pixels, got {height}x{width}")
    height, width = int(height), int(width)
    if not 0 < scale_factor < 1:
        raise GankitError(f"the SinGAN scale factor must lie strictly between 0 and 1, got {scale_factor}")
    if not 0 < min_size <= max_size:
        raise GankitError(f"SinGAN needs 0 < min_size <= max_size, got min_size={min_size}, max_size={max_size}")
    short, long = min(height, width), max(height, width)
    shrink = min(max_size / long, 1.0)
    h, w = math.ceil(height * shrink), math.ceil(width * shrink)
    if min(h, w) < min_size:
        fitted = f" once fitted into {max_size} px" if shrink < 1 else ""
        raise GankitError(f"a {height}x{width} image is too small for SinGAN: its shorter side{fitted} is "
                          f"{min(h, w)} px, below min_size={min_size}")
    num_scales = math.ceil(math.log(min_size / short, scale_factor)) + 1
    scales_cut = math.ceil(math.log(min(max_size, long) / long, scale_factor))
    stop = num_scales - scales_cut  # index of the finest scale
    if stop < 1:  # the authors' code divides by zero here
        raise GankitError(f"a {height}x{width} image is too small for SinGAN: it leaves a single scale "
                          f"(min_size={min_size}, max_size={max_size})")
    r = math.pow(min_size / min(h, w), 1 / stop)
    sizes = []
    for i in range(stop + 1):
        s = math.pow(r, stop - i)
        sizes.append((math.ceil(h * s), math.ceil(w * s)))
    return Pyramid(tuple(sizes), r)


def channels_at(scale: int, base: int = 32, cap: int = 128) -> int:
    """Width of every conv block at ``scale`` (0 = coarsest): ``base`` doubled every 4 scales,
    at most ``cap`` (the authors' ``nfc = min(nfc_init * 2^floor(scale / 4), 128)``)."""
    if scale < 0:
        raise GankitError(f"a SinGAN scale index must be >= 0, got {scale}")
    return min(base * 2 ** (scale // 4), cap)


class ConvBlock(nn.Sequential):
    """Conv 3x3 (unpadded, with bias) -> BatchNorm -> LeakyReLU(0.2): (N, c_in, h, w) ->
    (N, c_out, h - 2, w - 2). Child names ``conv``/``norm`` match the authors' checkpoints."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, KERNEL)
        self.norm = nn.BatchNorm2d(c_out)
        self.act = nn.LeakyReLU(0.2, inplace=True)


def _blocks(channels: int, width: int, num_layers: int) -> tuple[ConvBlock, nn.Sequential]:
    """The head (channels -> width) and the ``num_layers - 2`` body blocks (width -> width).
    The authors' nfc/min_nfc rule gives every block the same width when, as in all their
    settings, min_nfc == nfc."""
    if num_layers < 2:
        raise GankitError(f"SinGAN networks need at least 2 conv layers (head and tail), got {num_layers}")
    body = nn.Sequential()
    for i in range(num_layers - 2):
        body.add_module(f"block{i + 1}", ConvBlock(width, width))
    return ConvBlock(channels, width), body


@torch.no_grad()
def singan_init(module: nn.Module) -> None:
    """The authors' ``weights_init``: conv weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02) and
    shift 0. Conv biases keep PyTorch's default (uniform +-1/sqrt(fan_in)): the authors' rule
    leaves them alone too."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class SinGANGenerator(nn.Module):
    """G_n (§2.1, Eq. 2, Fig. 5): x_n = prev + psi_n(noise + prev), with psi_n = ``num_layers``
    unpadded 3x3 convs, the last one to ``channels`` and tanh. ``noise`` is z_n already scaled by
    the scale's noise amplitude (zeros plus z at the coarsest scale, where prev is zero).
    (N, C, H, W), (N, C, H, W) -> (N, C, H, W).

    Size: like the authors, the conv input is zero-padded once by ``num_layers`` pixels on every
    side and each unpadded conv takes 2 off, so the output is exactly H x W and only the image
    border sees zeros (their trainer pads noise and prev separately and crops prev back, which is
    the same sum). The residual makes G_n start as the identity on prev when psi_n is small.
    """

    def __init__(self, channels: int, width: int, num_layers: int = 5):
        super().__init__()
        self.pad = num_layers * (KERNEL - 1) // 2
        self.head, self.body = _blocks(channels, width, num_layers)
        self.tail = nn.Sequential(nn.Conv2d(width, channels, KERNEL), nn.Tanh())
        singan_init(self)

    def forward(self, noise: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        x = F.pad(noise + prev, (self.pad,) * 4)  # (N, C, H + 2L, W + 2L), zeros outside
        return self.tail(self.body(self.head(x))) + prev  # psi: (N, C, H, W)


class SinGANDiscriminator(nn.Module):
    """D_n (§2.2, supplementary): a Markovian patch critic, ``num_layers`` unpadded 3x3 convs,
    the last one to a single channel with no activation (WGAN-GP scores, not probabilities).
    Each score sees an 11x11 patch (for 5 layers). (N, C, H, W) -> (N, 1, H - 2L, W - 2L)."""

    def __init__(self, channels: int, width: int, num_layers: int = 5):
        super().__init__()
        self.head, self.body = _blocks(channels, width, num_layers)
        self.tail = nn.Conv2d(width, 1, KERNEL)
        singan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))


def upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, H, W), bilinear with align_corners=False: the step from one scale to
    the next (x_{n+1} up by 1/r in Eq. 2). The authors resize with their bicubic numpy
    ``imresize`` through uint8; bilinear on the device avoids that round trip and its
    quantisation, and the learned residual absorbs the difference in smoothness."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def resize_picture(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, h, w) in [-1, 1] -> (N, C, H, W): bicubic with antialiasing, clamped (how the pyramid's
    real images and every picture given to the applications are resized; the authors' ``imresize``)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)


def _net_parameters(channels: int, width: int, num_layers: int, out: int) -> int:
    """Parameters of G (out = channels) or D (out = 1): conv weights and biases, BatchNorm affine."""
    conv = lambda c_in, c_out: c_in * c_out * KERNEL * KERNEL + c_out  # noqa: E731
    hidden = conv(channels, width) + (num_layers - 2) * conv(width, width) + (num_layers - 1) * 2 * width
    return hidden + conv(width, out)


def _activation_values(h: int, w: int, channels: int, width: int, num_layers: int, out: int) -> int:
    """Values one forward of G or D keeps for backward, counted generously on an (h, w) input:
    the input, then per hidden block three width-channel maps (conv out, BatchNorm out, LeakyReLU
    out), then two ``out``-channel maps for the tail (conv out, tanh out)."""
    total = channels * h * w
    for j in range(1, num_layers + 1):
        hj, wj = max(h - 2 * j, 0), max(w - 2 * j, 0)
        total += (3 * width if j < num_layers else 2 * out) * hj * wj
    return total


def estimate_peak_bytes(sizes: Sequence[tuple[int, int]], channels: int = 3, *, base: int = 32, cap: int = 128,
                        num_layers: int = 5, batch: int = 1) -> int:
    """A conservative bound on the float32 training memory while the finest scale trains, in bytes.

    With (H, W) = ``sizes[-1]``, c = channels_at(len(sizes) - 1), L = ``num_layers`` and
    A(h, w, out) = C h w + sum_{j<L} 3 c (h - 2j)(w - 2j) + 2 out (h - 2L)(w - 2L) values
    (see :func:`_activation_values`):

        peak = 4 * batch * (2 A_G + 5 A_D)                                     activations
             + 4 * 4 * sum_n (P_G(n) + P_D(n))                                 weights, grads, Adam
             + 4 * 2 * C * sum_n h_n w_n                                       reals and fixed z

    A_G = A(H + 2L, W + 2L, C) is one forward of G on its padded input and A_D = A(H, W, 1) one of D.
    Two G graphs (the fake, kept from the D step into the G step, and the reconstruction pass)
    and five D graphs: the authors' step keeps D(real) and D(fake) alive (retain_graph), the
    gradient penalty's create_graph forward and its backward graph count about two more, and
    one more covers the transient gradients of the double backward. Weights, gradients and two
    Adam moments are counted for every scale's G and D, though a trainer keeps only the current
    scale's D and optimisers. The three-maps-per-block count is generous too (an in-place
    LeakyReLU shares BatchNorm's output): the storages autograd really holds in that step, with
    all those graphs alive, come to about 0.55 of this bound at small sizes (tests/test_singan_nn.py),
    which leaves room for the allocator's transient gradient buffers.
    """
    if not sizes:
        raise GankitError("estimating SinGAN memory needs at least one scale")
    if num_layers < 2 or batch < 1:
        raise GankitError(f"SinGAN memory estimate needs num_layers >= 2 and batch >= 1, got {num_layers}, {batch}")
    (h, w), L = sizes[-1], num_layers
    c = channels_at(len(sizes) - 1, base, cap)
    act_g = _activation_values(h + 2 * L, w + 2 * L, channels, c, L, channels)
    act_d = _activation_values(h, w, channels, c, L, 1)
    params = sum(_net_parameters(channels, channels_at(n, base, cap), L, channels)
                 + _net_parameters(channels, channels_at(n, base, cap), L, 1) for n in range(len(sizes)))
    images = sum(2 * channels * hn * wn for hn, wn in sizes)
    return FLOAT_BYTES * (batch * (2 * act_g + 5 * act_d) + 4 * params + images)
