"""Layers of the progressive and style-based GANs (Karras et al.): equalized learning rate,
pixelwise feature normalisation, minibatch standard deviation.

- Equalized learning rate (Karras et al. 2018, "Progressive Growing of GANs", arXiv:1710.10196,
  §4.1): weights are stored as N(0, 1) / lr_mul and scaled at run time by
  ``lr_mul / sqrt(fan_in)`` (He's constant), so Adam's per-parameter step moves every layer
  at the same relative speed. ``lr_mul`` < 1 slows a layer down (StyleGAN's mapping network,
  Karras et al. 2019, arXiv:1812.04948, §C: 0.01).
- Pixelwise feature vector normalisation (ProGAN §4.2): b = a / sqrt(mean_c a^2 + 1e-8); the
  same operation normalises z before StyleGAN's mapping network.
- Minibatch standard deviation (ProGAN §3): the mean over features and pixels of the standard
  deviation across a group of samples, appended as one more feature map, so D can see variety.

Activations follow the reference code: leaky ReLU(0.2) times sqrt(2), so the activations'
second moment is kept through a layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_GAIN = math.sqrt(2.0)


def lrelu(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Leaky ReLU (slope 0.2) times sqrt(2) * ``gain``: the reference codes' 'lrelu' activation."""
    return F.leaky_relu(x, 0.2) * (LRELU_GAIN * gain)


def pixel_norm(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean(x^2 over ``dim``) + eps) (ProGAN §4.2, Eq. in text)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class PixelNorm(nn.Module):
    """:func:`pixel_norm` over channels as a module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x)


class EqualLinear(nn.Module):
    """y = act(x W^T * (lr_mul / sqrt(in)) + b * lr_mul), W ~ N(0, 1) / lr_mul.

    ``activation``: "linear" or "lrelu"; ``bias_init`` sets b's starting value (StyleGAN's
    style affines start at 1, so every style starts as the identity modulation)."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, activation: str = "linear",
                 lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = None if self.bias is None else self.bias * self.lr_mul
        x = F.linear(x, self.weight * self.weight_gain, b)
        return lrelu(x) if self.activation == "lrelu" else x

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, act={self.activation}, lr_mul={self.lr_mul}"


class EqualConv2d(nn.Module):
    """A stride-1 'same' convolution with equalized learning rate (W ~ N(0, 1), scaled by
    1 / sqrt(in * k * k) at run time) and an optional lrelu; ``gain`` scales the output
    (the residual blocks' sqrt(1/2)). Resampling is the caller's (see :mod:`gankit.nn.fir`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 activation: str = "linear"):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.activation = activation

    def scaled_weight(self) -> torch.Tensor:
        return self.weight * self.weight_gain

    def forward(self, x: torch.Tensor, *, gain: float = 1.0) -> torch.Tensor:
        x = F.conv2d(x, self.scaled_weight(), self.bias, padding=self.weight.shape[-1] // 2)
        return activate(x, self.activation, gain)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, kernel_size={k}, act={self.activation}"


def activate(x: torch.Tensor, activation: str, gain: float = 1.0) -> torch.Tensor:
    """``lrelu`` (with its sqrt(2) gain) or ``linear``, times ``gain``."""
    if activation == "lrelu":
        return lrelu(x, gain)
    return x * gain if gain != 1 else x


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_channels: int = 1) -> torch.Tensor:
    """Append the minibatch standard deviation (ProGAN §3; StyleGAN2's ``MinibatchStdLayer``).

    Samples are split into groups of ``group_size`` (strided, so group members are i, i + n,
    i + 2n, ...); within a group each of ``num_channels`` channel groups gets the mean over its
    channels and pixels of the per-position standard deviation across the group's samples. The
    group shrinks to the largest divisor of the batch not above ``group_size`` (a last batch of
    odd size still works). (N, C, H, W) -> (N, C + num_channels, H, W)."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    while n % g:
        g -= 1
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # (n/g, F, c/F, H, W)
    y = y.mean(dim=(2, 3, 4)).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class MinibatchStddev(nn.Module):
    """:func:`minibatch_stddev` as a module."""

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return minibatch_stddev(x, self.group_size, self.num_channels)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
