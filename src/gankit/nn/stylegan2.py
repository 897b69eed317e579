"""StyleGAN2 networks (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN", arXiv:1912.04958, config F) in plain PyTorch.

- :class:`MappingNetwork`: z -> w through ``num_layers`` equalized-lr FC layers with a
  learning-rate multiplier of 0.01 (StyleGAN §C), after normalising z's second moment; it
  tracks the mean w (decay 0.995) for the truncation trick.
- :class:`SynthesisNetwork`: a learned 4x4 constant; per resolution a block of two
  modulated/demodulated 3x3 convolutions (the first upsamples), each with per-pixel noise of a
  learned strength, and a ToRGB layer whose outputs are upsampled and summed: the "skip"
  generator of Fig. 7(b). w is given per layer (W+), ``num_ws`` = 2 log2(R) - 2 entries.
- :class:`Discriminator`: the residual discriminator of Fig. 7(c) with the minibatch standard
  deviation layer before its 4x4 epilogue.

Parameter and buffer names and shapes follow the authors' stylegan2-ada-pytorch
``training/networks.py`` (``mapping.fc0.weight``, ``synthesis.b8.conv0.affine.bias``, ...), so
its checkpoints map onto these modules one to one; ``tests/families/test_stylegan2.py`` pins the
parameter counts measured from that code (``bench/stylegan2_reference.py``). Resampling uses the
FIR filter [1, 3, 3, 1] through ordinary convolutions (:mod:`gankit.nn.fir`); the modulated
convolution scales activations instead of weights (the reference code's non-fused path), which
is exact and lets every sample share one convolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gankit.nn.equalized import EqualConv2d, EqualLinear, activate, minibatch_stddev, pixel_norm
from gankit.nn.fir import blur, downsample2d, make_filter, upsample2d

NOISE_MODES = ("random", "const", "none")
SQRT_HALF = math.sqrt(0.5)


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: min(channel_base / R, channel_max) (the authors' rule)."""
    return min(channel_base // resolution, channel_max)


def clamp(x: torch.Tensor, limit: float | None) -> torch.Tensor:
    """Clamp activations to [-limit, limit] (the reference code's ``conv_clamp``, 256 in its
    configs: it keeps reduced-precision activations in range). As ``hardtanh``: the same values,
    and a backward of one fused pass where ``clamp``'s takes three (about 3x faster on a CPU; the
    gradients differ only at exactly +-limit)."""
    return x if limit is None else F.hardtanh(x, -limit, limit)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool = True,
                     up: bool = False, resample_filter: torch.Tensor | None = None) -> torch.Tensor:
    """Modulated convolution (StyleGAN2 §2.2, Eq. 1-3).

    Modulation w'_ijk = s_i w_ijk is applied to the activations (x * s) so one convolution serves
    the whole batch; demodulation divides output j by sigma_j = sqrt(sum_ik (s_i w_ijk)^2 + 1e-8),
    computed as (s^2) @ (sum_k w^2)^T. With ``up``, a stride-2 transposed convolution then the FIR
    filter (gain 4) makes a 2x larger output. x (N, I, H, W), weight (O, I, k, k), styles (N, I)."""
    x = x * styles[:, :, None, None].to(x.dtype)
    if up:
        x = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)
        x = blur(x, resample_filter, (1, 1), gain=4)  # (2H + 1) + 2 - 3 = 2H
    else:
        x = F.conv2d(x, weight.to(x.dtype), padding=weight.shape[-1] // 2)
    if demodulate:
        sigma_inv = (styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()  # (N, O)
        x = x * sigma_inv[:, :, None, None].to(x.dtype)
    return x


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """The truncation trick in W (StyleGAN §B; StyleGAN2 App. C): w' = w_avg + psi (w - w_avg), on
    the first ``cutoff`` layers only when given. psi = 1 changes nothing, 0 gives the mean face."""
    if psi == 1:
        return ws
    cut = ws.shape[1] if cutoff is None else cutoff
    out = ws.clone()
    out[:, :cut] = torch.lerp(w_avg.to(ws.dtype), ws[:, :cut], psi)
    return out


# ---- mapping ------------------------------------------------------------------------------------
class MappingNetwork(nn.Module):
    """z (N, z_dim) -> ws (N, num_ws, w_dim): one w broadcast to every layer."""

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8, lr_mul: float = 0.01,
                 w_avg_beta: float = 0.995):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers, self.w_avg_beta = z_dim, w_dim, num_ws, num_layers, w_avg_beta
        dims = [z_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            setattr(self, f"fc{i}", EqualLinear(dims[i], dims[i + 1], activation="lrelu", lr_mul=lr_mul))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, *, update_w_avg: bool = True) -> torch.Tensor:
        x = pixel_norm(z.float())
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if self.training and update_w_avg:  # the tracked mean w of the truncation trick
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))  # fp32 under bf16 autocast
        return x[:, None, :].repeat(1, self.num_ws, 1)


# ---- synthesis ----------------------------------------------------------------------------------
class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling), noise, bias, lrelu: one style per layer."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, up: bool = False,
                 conv_clamp: float | None = None):
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.register_buffer("resample_filter", make_filter())
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # styles start as identity
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))  # noise_mode="const"
        self.noise_strength = nn.Parameter(torch.zeros([]))  # learned, starts at 0 (StyleGAN §2)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), up=self.up, resample_filter=self.resample_filter)
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        return clamp(activate(x + self.bias[:, None, None], "lrelu"), self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to image channels, no demodulation (StyleGAN2 Fig. 7b's tRGB)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        return clamp(x + self.bias[:, None, None], self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: [const | conv0 (up)] -> conv1 -> tRGB added to the
    upsampled image so far. Uses ``num_conv`` ws plus one for its tRGB (shared with the next
    block's first conv, as in the reference code)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", make_filter())
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(self, x, img, ws: torch.Tensor, noise_mode: str = "random"):
        w = ws.unbind(dim=1)
        if self.in_channels == 0:
            x = self.const[None].expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, w[0], noise_mode)
        else:
            x = self.conv0(x, w[0], noise_mode)
            x = self.conv1(x, w[1], noise_mode)
        y = self.torgb(x, w[self.num_conv]).float()
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> images (N, C, R, R)."""

    def __init__(self, w_dim: int, resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, conv_clamp: float | None = None):
        super().__init__()
        self.resolutions = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
        self.num_ws = 0
        for res in self.resolutions:
            cin = channels_at(res // 2, channel_base, channel_max) if res > 4 else 0
            block = SynthesisBlock(cin, channels_at(res, channel_base, channel_max), w_dim, res, img_channels,
                                   conv_clamp=conv_clamp)
            setattr(self, f"b{res}", block)
            self.num_ws += block.num_conv
        self.num_ws += 1  # the last block's tRGB

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = img = None
        i = 0
        for res in self.resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws[:, i:i + block.num_conv + 1], noise_mode)
            i += block.num_conv
        return img


class Generator(nn.Module):
    """z -> image. ``forward(z)`` samples with random noise in training mode and the stored
    noise in eval mode (so a seed gives one image); ``mapping`` and ``synthesis`` are public for
    work in W and W+ (style mixing, projection, editing)."""

    def __init__(self, z_dim: int, w_dim: int, resolution: int, img_channels: int, *, map_layers: int = 8,
                 map_lr_mul: float = 0.01, channel_base: int = 32768, channel_max: int = 512,
                 conv_clamp: float | None = None):
        super().__init__()
        self.z_dim, self.w_dim, self.resolution = z_dim, w_dim, resolution
        self.synthesis = SynthesisNetwork(w_dim, resolution, img_channels, channel_base, channel_max, conv_clamp)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, map_layers, map_lr_mul)

    def forward(self, z: torch.Tensor, *, truncation: float = 1.0, truncation_cutoff: int | None = None,
                noise_mode: str | None = None, mix_z: torch.Tensor | None = None, mix_cutoff: int = 0,
                return_ws: bool = False):
        """Images for ``z``; with ``mix_z``, layers from ``mix_cutoff`` on take ``mix_z``'s w (the
        style-mixing regulariser, StyleGAN §3.1); ``return_ws`` also returns the ws used (the
        path-length regulariser differentiates through them). Everything runs in this one
        call so a DistributedDataParallel wrapper sees the whole graph."""
        ws = self.mapping(z)
        if mix_z is not None:
            ws = torch.cat([ws[:, :mix_cutoff], self.mapping(mix_z, update_w_avg=False)[:, mix_cutoff:]], dim=1)
        ws = truncate(ws, self.mapping.w_avg, truncation, truncation_cutoff)
        img = self.synthesis(ws, noise_mode or ("random" if self.training else "const"))
        return (img, ws) if return_ws else img


# ---- discriminator ------------------------------------------------------------------------------
class Conv2dLayer(EqualConv2d):
    """An equalized-lr conv that can halve the resolution: FIR filter, then a stride-2 conv
    (the reference ``conv2d_resample`` with down=2); ``clamp`` limits its activations."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 activation: str = "linear", down: bool = False, conv_clamp: float | None = None):
        super().__init__(in_channels, out_channels, kernel_size, bias=bias, activation=activation)
        self.down, self.conv_clamp = down, conv_clamp
        self.register_buffer("resample_filter", make_filter())

    def forward(self, x: torch.Tensor, *, gain: float = 1.0) -> torch.Tensor:
        if not self.down:
            return clamp(super().forward(x, gain=gain), None if self.conv_clamp is None else self.conv_clamp * gain)
        k = self.weight.shape[-1]
        if k == 1:  # the residual shortcut: downsample, then 1x1
            x = F.conv2d(downsample2d(x, self.resample_filter), self.scaled_weight(), self.bias)
        else:  # filter with padding (k - 1) / 2 + 1 each side, then a valid stride-2 conv
            p = (k - 1) // 2 + 1
            x = F.conv2d(blur(x, self.resample_filter, (p, p)), self.scaled_weight(), self.bias, stride=2)
        x = activate(x, self.activation, gain)
        return clamp(x, None if self.conv_clamp is None else self.conv_clamp * gain)


class DiscriminatorBlock(nn.Module):
    """Residual block (Fig. 7c): conv3x3, conv3x3 + down, plus a 1x1 down shortcut, both
    branches scaled by sqrt(1/2). The first block reads the image through a 1x1 fromRGB."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 conv_clamp: float | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.register_buffer("resample_filter", make_filter())  # unused here; kept for the reference layout
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=True, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)
        y = self.skip(x, gain=SQRT_HALF)
        x = self.conv1(self.conv0(x), gain=SQRT_HALF)
        return y + x


class DiscriminatorEpilogue(nn.Module):
    """4x4: minibatch stddev, conv3x3, FC, FC -> one logit."""

    def __init__(self, channels: int, mbstd_group: int = 4, conv_clamp: float | None = None):
        super().__init__()
        self.mbstd_group = mbstd_group
        self.conv = Conv2dLayer(channels + 1, channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.fc = EqualLinear(channels * 16, channels, activation="lrelu")
        self.out = EqualLinear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(minibatch_stddev(x, self.mbstd_group))
        return self.out(self.fc(x.flatten(1)))


class Discriminator(nn.Module):
    """images (N, C, R, R) -> logits (N,)."""

    def __init__(self, resolution: int, img_channels: int, channel_base: int = 32768, channel_max: int = 512,
                 mbstd_group: int = 4, conv_clamp: float | None = None):
        super().__init__()
        self.resolutions = [2 ** i for i in range(int(math.log2(resolution)), 2, -1)]
        for res in self.resolutions:
            cin = channels_at(res, channel_base, channel_max) if res < resolution else 0
            block = DiscriminatorBlock(cin, channels_at(res, channel_base, channel_max),
                                       channels_at(res // 2, channel_base, channel_max), img_channels, conv_clamp)
            setattr(self, f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(channels_at(4, channel_base, channel_max), mbstd_group, conv_clamp)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = None
        for res in self.resolutions:
            x = getattr(self, f"b{res}")(x, img)
        if x is None:  # a 4x4 model: read the image directly
            raise ValueError("StyleGAN2's discriminator needs a resolution of at least 8")
        return self.b4(x).flatten()
