"""DCGAN's 4x4, stride-2, padding-1 (transposed) convolutions, with a faster weight gradient on
the CPU in bfloat16 where the small side of the layer is at most 4x4.

The weight gradient of ``y = conv2d(x, w, stride=2, padding=1)`` is a correlation of the input
with the output gradient over the batch and the output positions:

    dw[o, c, a, b] = sum_n sum_ij  dy[n, o, i, j] * pad(x)[n, c, 2i + a, 2j + b]

which is itself a convolution, with the batch as its channels and the output gradient as a
kernel dilated by 2: ``conv2d(x^T, dy^T, padding=1, dilation=2)^T`` (^T swaps the first two
axes). For a transposed convolution the roles of input and output gradient swap. oneDNN's own
backward-weights kernel is slow for these shapes: on a 2-core Xeon with AMX, bf16, batch 64,
the 256 -> 512 layer from 8x8 to 4x4 takes 20.3 ms there and 5.4 ms as the dilated convolution;
at 8x8 and larger outputs oneDNN is faster again (6.6 against 13.7 ms at 16 -> 8), and in fp32
it is as fast either way (``bench/throughput.py``, docs/benchmarks.md#speed-issue-18). So the
layers below take this path only under CPU bf16 autocast, for small sides of at most
:data:`SMALL_SIDE`; elsewhere they are plain ``nn.Conv2d`` / ``nn.ConvTranspose2d``. Their
parameters, state dict, initialisation and output are those of the torch layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SMALL_SIDE = 4  # the dilated weight gradient wins for a 4x4 small side and loses from 8x8 on


def _bf16_autocast_on_cpu(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16)


def _weight_grad(big: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
    """sum over n, i, j of small[n, o, i, j] * pad(big)[n, c, 2i + a, 2j + b] -> (o, c, 4, 4)."""
    return F.conv2d(big.transpose(0, 1), small.transpose(0, 1), padding=1, dilation=2).transpose(0, 1)


class _StridedConv(torch.autograd.Function):
    """conv2d (or conv_transpose2d) with kernel 4, stride 2, padding 1, no bias; the weight
    gradient as a dilated convolution (module docstring). Inputs share one dtype."""

    @staticmethod
    def forward(ctx, x, weight, transposed: bool):
        ctx.save_for_backward(x, weight)
        ctx.transposed = transposed
        conv = F.conv_transpose2d if transposed else F.conv2d
        return conv(x, weight, stride=2, padding=1)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:  # the adjoint: a transposed convolution undoes the stride
            adjoint = F.conv2d if ctx.transposed else F.conv_transpose2d
            grad_x = adjoint(grad, weight, stride=2, padding=1)
        if ctx.needs_input_grad[1]:
            grad_w = _weight_grad(grad, x) if ctx.transposed else _weight_grad(x, grad)
            grad_w = grad_w.contiguous(memory_format=torch.channels_last
                                       if weight.is_contiguous(memory_format=torch.channels_last)
                                       else torch.contiguous_format)
        return grad_x, grad_w, None


def _fast_path(layer: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor, small_side: int) -> bool:
    return (layer.bias is None and small_side <= SMALL_SIDE and _bf16_autocast_on_cpu(x)
            and layer.kernel_size == (4, 4) and layer.stride == (2, 2) and layer.padding == (1, 1)
            and layer.dilation == (1, 1) and layer.groups == 1)


class StridedConv2d(nn.Conv2d):
    """``nn.Conv2d(in, out, 4, 2, 1, bias=False)``; see the module docstring for its backward."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 4, 2, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _fast_path(self, x, min(x.shape[-2:]) // 2):
            return super().forward(x)
        return _StridedConv.apply(x.to(torch.bfloat16), self.weight.to(torch.bfloat16), False)


class StridedConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d(in, out, 4, 2, 1, bias=False)``; see the module docstring."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 4, 2, 1, bias=False)

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if output_size is not None or not _fast_path(self, x, min(x.shape[-2:])):
            return super().forward(x, output_size)
        return _StridedConv.apply(x.to(torch.bfloat16), self.weight.to(torch.bfloat16), True)
