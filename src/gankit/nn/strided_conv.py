"""DCGAN's 4x4, stride-2, padding-1 (transposed) convolutions, faster on the CPU in bfloat16
where the small side of the layer is at most 4x4 (DCGAN's widest layers, next to 4x4).

oneDNN's kernels for these shapes run far below the CPU's bf16 matrix units, so under CPU bf16
autocast those layers compute two of their three products another way (same arithmetic):

- **Weight gradient.** ``dw[o, c, a, b] = sum_n sum_ij dy[n, o, i, j] * pad(x)[n, c, 2i + a, 2j + b]``
  is itself a convolution, with the batch as its channels and the output gradient as a kernel
  dilated by 2: ``conv2d(x^T, dy^T, padding=1, dilation=2)^T`` (^T swaps the first two axes;
  for a transposed convolution input and output gradient swap roles).
- **Transposed convolution** (the forward of ``StridedConvTranspose2d``, and the input gradient
  of ``StridedConv2d``): one matrix product ``(N h w, C_in) @ (C_in, 4 4 C_out)`` and the 16
  strided additions of col2im, accumulated in fp32.

Measured on a 2-core Xeon with AMX, bf16, batch 64, 256 <-> 512 channels between 8x8 and 4x4:
weight gradient 20.3 ms in oneDNN, 5.4 ms as the dilated convolution; transposed convolution
11.6 ms against 5.1 ms. From 8x8 small sides on oneDNN is faster again (weight gradient 6.6
against 13.7 ms at 16 -> 8), and in fp32 it is as fast either way (docs/benchmarks.md#speed-issue-18).
Elsewhere the layers are plain ``nn.Conv2d`` / ``nn.ConvTranspose2d``; their parameters, state
dict and initialisation are torch's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SMALL_SIDE = 4  # the dilated weight gradient wins for a 4x4 small side and loses from 8x8 on


def _fast_path(x: torch.Tensor, small_side: int) -> bool:
    """Under CPU bf16 autocast, for a small side of at most SMALL_SIDE (the layers' kernel, stride,
    padding and bias are fixed by their constructors)."""
    return (small_side <= SMALL_SIDE and x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16)


def _layout_of(t: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def _weight_grad(big: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
    """sum over n, i, j of small[n, o, i, j] * pad(big)[n, c, 2i + a, 2j + b] -> (o, c, 4, 4)."""
    return F.conv2d(big.transpose(0, 1), small.transpose(0, 1), padding=1, dilation=2).transpose(0, 1)


def _transposed(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """conv_transpose2d(x, weight, stride=2, padding=1) for weight (C_in, C_out, 4, 4): one matrix
    product, then each of the 16 kernel taps added onto its stride-2 grid (col2im) in fp32."""
    n, c_in, h, w = x.shape
    c_out = weight.shape[1]
    taps = x.permute(0, 2, 3, 1).reshape(n * h * w, c_in) @ weight.permute(0, 2, 3, 1).reshape(c_in, 16 * c_out)
    taps = taps.view(n, h, w, 4, 4, c_out)
    out = torch.zeros(n, 2 * h + 2, 2 * w + 2, c_out, dtype=torch.float32, device=x.device)
    for a in range(4):
        for b in range(4):
            out[:, a:a + 2 * h:2, b:b + 2 * w:2] += taps[:, :, :, a, b]
    return out[:, 1:-1, 1:-1].permute(0, 3, 1, 2).to(x.dtype).contiguous(memory_format=_layout_of(x))


class _StridedConv(torch.autograd.Function):
    """conv2d (or conv_transpose2d) with kernel 4, stride 2, padding 1, no bias, computed as the
    module docstring says. Inputs share one dtype."""

    @staticmethod
    def forward(ctx, x, weight, transposed: bool):
        ctx.save_for_backward(x, weight)
        ctx.transposed = transposed
        return _transposed(x, weight) if transposed else F.conv2d(x, weight, stride=2, padding=1)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:  # the adjoint: a transposed convolution undoes the stride
            grad_x = F.conv2d(grad, weight, stride=2, padding=1) if ctx.transposed else _transposed(grad, weight)
        if ctx.needs_input_grad[1]:
            grad_w = _weight_grad(grad, x) if ctx.transposed else _weight_grad(x, grad)
            grad_w = grad_w.contiguous(memory_format=_layout_of(weight))
        return grad_x, grad_w, None


class StridedConv2d(nn.Conv2d):
    """``nn.Conv2d(in, out, 4, 2, 1, bias=False)``; see the module docstring for its backward."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 4, 2, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _fast_path(x, min(x.shape[-2:]) // 2):
            return super().forward(x)
        return _StridedConv.apply(x.to(torch.bfloat16), self.weight.to(torch.bfloat16), False)


class StridedConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d(in, out, 4, 2, 1, bias=False)``; see the module docstring."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 4, 2, 1, bias=False)

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if output_size is not None or not _fast_path(x, min(x.shape[-2:])):
            return super().forward(x, output_size)
        return _StridedConv.apply(x.to(torch.bfloat16), self.weight.to(torch.bfloat16), True)
