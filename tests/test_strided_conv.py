"""gankit.nn.strided_conv: torch's 4x4 stride-2 layers, with the weight gradient as a dilated
convolution under CPU bf16 autocast (small side <= 4)."""

import pytest
import torch
from torch import nn

from gankit.nn import strided_conv
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
