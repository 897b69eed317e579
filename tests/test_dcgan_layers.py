"""DCGAN's layers, sped up where oneDNN is slow: gankit.nn.strided_conv (4x4 stride-2 layers
next to 4x4 under CPU bf16 autocast: dilated weight gradient, transposed convolution as a matrix
product) and gankit.nn.dense_conv (the 4x4 layers to and from 1x1, as matrix products)."""

import pytest
import torch
from torch import nn

from gankit.nn import dense_conv, strided_conv
from gankit.nn.strided_conv import StridedConv2d, StridedConvTranspose2d

CASES = [  # (gankit layer, torch layer, input shape): the small side is 4 in both
    (StridedConv2d, nn.Conv2d, (6, 8, 8, 8)),
    (StridedConvTranspose2d, nn.ConvTranspose2d, (6, 8, 4, 4)),
]


def _pair(cls, base):
    torch.manual_seed(0)
    ours = cls(8, 5)
    theirs = base(8, 5, 4, 2, 1, bias=False)
    theirs.load_state_dict(ours.state_dict())  # same keys, same shapes
    return ours, theirs


def _run(layer, x, grad, autocast: bool):
    x = x.clone().requires_grad_(True)
    layer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = layer(x)
    y.backward(grad.to(y.dtype))
    return y, x.grad, layer.weight.grad


@pytest.mark.parametrize("cls,base,shape", CASES)
def test_fp32_is_the_torch_layer(cls, base, shape):
    ours, theirs = _pair(cls, base)
    x = torch.randn(shape)
    grad = torch.randn_like(theirs(x))
    for a, b in zip(_run(ours, x, grad, False), _run(theirs, x, grad, False)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cls,base,shape", CASES)
def test_bf16_gradients_match_a_float64_reference(cls, base, shape, monkeypatch):
    calls = []
    weight_grad = strided_conv._weight_grad
    monkeypatch.setattr(strided_conv, "_weight_grad", lambda *a: calls.append(1) or weight_grad(*a))
    ours, theirs = _pair(cls, base)
    x = torch.randn(shape).bfloat16().float()  # values bf16 holds exactly
    ours.weight.data = ours.weight.data.bfloat16().float()
    grad = torch.randn(theirs(x).shape).bfloat16()
    y, gx, gw = _run(ours, x, grad, True)
    assert calls == [1] and y.dtype == torch.bfloat16 and gw.dtype == torch.float32

    ref = theirs.double()
    ref.weight.data = ours.weight.data.double()
    y_ref, gx_ref, gw_ref = _run(ref, x.double(), grad.double(), False)
    for got, want in ((y, y_ref), (gx, gx_ref), (gw, gw_ref)):
        assert got.shape == want.shape
        err = (got.double() - want).abs().max() / want.abs().max()
        assert err < 1e-2  # bf16 keeps 8 bits of mantissa: one rounding of the result


def test_larger_layers_and_other_precisions_keep_the_torch_backward(monkeypatch):
    monkeypatch.setattr(strided_conv, "_weight_grad", lambda *a: pytest.fail("fast path taken"))
    layer = StridedConv2d(4, 4)
    for shape, autocast in (((2, 4, 16, 16), True), ((2, 4, 8, 8), False)):  # small side 8; fp32
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = layer(torch.randn(shape))
        y.float().sum().backward()


# ---- gankit.nn.dense_conv: the 4x4 layers next to a 1x1 map, as matrix products ----------------
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("cls,base,shape", [(dense_conv.Project4x4, nn.ConvTranspose2d, (5, 6, 1, 1)),
                                            (dense_conv.Dense4x4, nn.Conv2d, (5, 6, 4, 4))])
def test_dense_layers_match_the_torch_convolutions(cls, base, shape, channels_last):
    torch.manual_seed(0)
    ours, theirs = cls(6, 3), base(6, 3, 4, 1, 0, bias=False)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    grad = torch.randn(theirs(x).shape)
    (y, gx, gw), (y_ref, gx_ref, gw_ref) = _run(ours, x, grad, False), _run(theirs, x, grad, False)
    for got, want in ((y, y_ref), (gx, gx_ref), (gw, gw_ref)):
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5, rtol=1e-5)


def test_dense_layers_fall_back_to_torch_on_other_sizes():
    torch.manual_seed(0)
    ours, theirs = dense_conv.Dense4x4(6, 3), nn.Conv2d(6, 3, 4, 1, 0, bias=False)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 6, 8, 8)
    assert torch.equal(ours(x), theirs(x))
