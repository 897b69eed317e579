"""FIR up/down-sampling in plain PyTorch ops (no custom CUDA kernels to compile).

StyleGAN2 (Karras et al. 2020, arXiv:1912.04958) resamples with a separable low-pass filter,
the binomial [1, 3, 3, 1] (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again"),
through the reference code's ``upfirdn2d`` op: upsample by zero insertion, pad, filter,
downsample. The three uses here are written with ordinary convolutions:

- :func:`upsample2d`: x2 upsampling = a depthwise transposed convolution with the filter (gain 4,
  so the mean is kept), which equals ``upfirdn2d(x, f, up=2, pad=(2, 1))``;
- :func:`downsample2d`: x2 downsampling = filter with pad (1, 1), then keep every 2nd pixel;
- :func:`blur`: the filter alone with a given padding, around a strided or transposed
  convolution (how a 3x3 conv with up=2/down=2 is done, as in the reference code).

Filters are registered as buffers by the layers that use them (:func:`make_filter`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

DEFAULT_TAPS = (1.0, 3.0, 3.0, 1.0)


def make_filter(taps: Sequence[float] = DEFAULT_TAPS) -> torch.Tensor:
    """The 2-D separable filter outer(t, t), normalised to sum 1."""
    t = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(t, t)
    return f / f.sum()


def _depthwise(f: torch.Tensor, channels: int, dtype: torch.dtype) -> torch.Tensor:
    return f.to(dtype).flip((0, 1))[None, None].repeat(channels, 1, 1, 1)


def blur(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], gain: float = 1.0) -> torch.Tensor:
    """Filter each channel with ``f`` (a true convolution) after padding (before, after) on
    both axes with zeros; ``gain`` multiplies the filter. Equal padding goes to the convolution
    itself (no padded copy of ``x``)."""
    c = x.shape[1]
    if pad[0] != pad[1]:
        x, pad = F.pad(x, (pad[0], pad[1], pad[0], pad[1])), (0, 0)
    return F.conv2d(x, _depthwise(f * gain, c, x.dtype), padding=pad[0], groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, 2H, 2W): zero insertion, then the filter with gain 4."""
    c, k = x.shape[1], f.shape[-1]
    # conv_transpose2d(stride 2, padding p) places x[i] * f at 2i - p: p = (k - 2) / 2 gives
    # upfirdn2d's padding ((k + 1) // 2, (k - 2) // 2) for an even filter of k taps.
    return F.conv_transpose2d(x, _depthwise(f * 4, c, x.dtype), stride=2, padding=(k - 2) // 2, groups=c)


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H/2, W/2): the filter with padding ((k - 2) // 2 each side), stride 2."""
    c, k = x.shape[1], f.shape[-1]
    return F.conv2d(x, _depthwise(f, c, x.dtype), stride=2, padding=(k - 2) // 2, groups=c)
