"""SinGAN building blocks (gankit.nn.singan): the authors' pyramid rule, widths, G and D, memory bound."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.errors import GankitError
from gankit.nn.singan import (SinGANDiscriminator, SinGANGenerator, _net_parameters, channels_at,
                              estimate_peak_bytes, pyramid, upsample)

# --- pyramid: the authors' adjust_scales2image + creat_reals_pyramid, s = 0.75, logs to base s ---


def test_pyramid_of_an_image_already_within_max_size():
    # 250x188: n = ceil(log(25/188)) + 1 = ceil(7.013) + 1 = 9, k = ceil(log(250/250)) = 0, so N = 9
    # and 10 scales; no shrink; r = (25/188)^(1/9) = 0.79918. Scale i = ceil(250 r^(9-i)), ceil(188 r^(9-i)):
    # r^9 -> 33.24, 25.00000000000001 (float, as in their numpy) -> (34, 26); r^8 -> 41.60, 31.28 -> (42, 32);
    # r^7 -> 52.05, 39.14; r^6 -> 65.13, 48.98; r^5 -> 81.50, 61.29; r^4 -> 101.98, 76.69;
    # r^3 -> 127.60, 95.96; r^2 -> 159.67, 120.07; r^1 -> 199.79, 150.25; r^0 -> 250, 188.
    p = pyramid(250, 188)
    assert p.sizes == ((34, 26), (42, 32), (53, 40), (66, 49), (82, 62), (102, 77), (128, 96), (160, 121),
                       (200, 151), (250, 188))
    assert len(p) == 10
    assert p.scale_factor == pytest.approx((25 / 188) ** (1 / 9))
    assert 0.75 < p.scale_factor < 0.8  # re-fitted: N even steps from 188 down to 25


def test_pyramid_is_symmetric_in_height_and_width():
    p, q = pyramid(250, 188), pyramid(188, 250)
    assert q.sizes == tuple((w, h) for h, w in p.sizes)
    assert q.scale_factor == p.scale_factor


def test_pyramid_of_a_large_image_shrinks_it_to_max_size_first():
    # 1000x750: n = ceil(log(25/750)) + 1 = ceil(11.82) + 1 = 13, k = ceil(log(250/1000)) = ceil(4.82) = 5,
    # N = 8 (9 scales: one fewer than the 250x188 image above, the authors' rule counts from the original);
    # shrink q = 0.25 -> (250, ceil(187.5) = 188); r = (25/188)^(1/8) = 0.77709;
    # r^8 -> 33.24, 24.999999999999993 -> (34, 25); r^7 -> 42.78, 32.17 -> (43, 33); r^6 -> 55.05, 41.40;
    # r^5 -> 70.84, 53.27; r^4 -> 91.17, 68.56; r^3 -> 117.32, 88.22; r^2 -> 150.97, 113.53;
    # r^1 -> 194.27, 146.09; r^0 -> 250, 188.
    p = pyramid(1000, 750)
    assert p.sizes == ((34, 25), (43, 33), (56, 42), (71, 54), (92, 69), (118, 89), (151, 114), (195, 147),
                       (250, 188))
    assert p.scale_factor == pytest.approx((25 / 188) ** (1 / 8))


def test_pyramid_near_min_size_and_never_enlarging():
    # 30x40: n = ceil(log(25/30)) + 1 = ceil(0.634) + 1 = 2, k = 0, N = 2, r = sqrt(25/30) = 0.91287;
    # r^2 -> 25.0, 33.33 -> (25, 34); r -> 27.39, 36.51 -> (28, 37); then (30, 40) itself.
    p = pyramid(30, 40)
    assert p.sizes == ((25, 34), (28, 37), (30, 40))
    assert p.scale_factor == pytest.approx(math.sqrt(25 / 30))
    assert pyramid(60, 80).sizes[-1] == (60, 80)  # smaller than max_size: kept, not enlarged


@pytest.mark.parametrize("args, kwargs, words", [
    ((24, 40), {}, "below min_size=25"),
    ((1000, 30), {}, "once fitted into 250 px is 8 px"),  # 30 * 0.25 -> 8 after the shrink
    ((0, 40), {}, "positive"),
    ((-5, 40), {}, "positive"),
    ((250, 188), {"scale_factor": 1.0}, "between 0 and 1"),
    ((250, 188), {"scale_factor": 0.0}, "between 0 and 1"),
    ((250, 188), {"min_size": 300}, "min_size <= max_size"),
])
def test_pyramid_rejects_bad_input_in_one_sentence(args, kwargs, words):
    with pytest.raises(GankitError, match=words) as err:
        pyramid(*args, **kwargs)
    assert "\n" not in str(err.value)


def test_channels_follow_the_authors_nfc_rule():
    assert [channels_at(s) for s in (0, 3, 4, 7, 8, 12)] == [32, 32, 64, 64, 128, 128]
    assert channels_at(1, base=8, cap=16) == 8 and channels_at(9, base=8, cap=16) == 16
    with pytest.raises(GankitError):
        channels_at(-1)


# --- networks ---


def test_generator_keeps_odd_sizes_and_discriminator_gives_a_patch_map():
    torch.manual_seed(0)
    g, d = SinGANGenerator(3, 8), SinGANDiscriminator(3, 8)
    prev = torch.rand(2, 3, 25, 33) * 2 - 1
    out = g(0.1 * torch.randn_like(prev), prev)
    assert out.shape == (2, 3, 25, 33)
    assert d(out).shape == (2, 1, 25 - 10, 33 - 10)  # five unpadded 3x3 convs take 2 px each
    assert SinGANDiscriminator(1, 4, num_layers=3)(torch.zeros(1, 1, 9, 12)).shape == (1, 1, 3, 6)
    with pytest.raises(GankitError, match="at least 2"):
        SinGANGenerator(3, 8, num_layers=1)


def test_generator_is_residual_on_prev():
    torch.manual_seed(0)
    g = SinGANGenerator(3, 8)
    prev, noise = torch.randn(1, 3, 26, 31), torch.randn(1, 3, 26, 31)
    assert not torch.equal(g(noise, prev), prev)
    with torch.no_grad():
        g.tail[0].weight.zero_()
        g.tail[0].bias.zero_()
    assert torch.equal(g(noise, prev), prev)  # tanh(0) = 0: G_n(z, x) = x + psi(z + x)


def test_discriminator_scores_are_finite_and_carry_gradients():
    torch.manual_seed(0)
    d = SinGANDiscriminator(3, 8)
    x = torch.randn(1, 3, 27, 30, requires_grad=True)
    score = d(x)
    assert torch.isfinite(score).all()
    score.mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())
    with torch.no_grad():
        d.tail.bias.fill_(5.0)
        assert d(x).min() > 1  # an unbounded critic score, no sigmoid


def test_weights_are_initialised_as_the_authors_do_and_keys_match_theirs():
    torch.manual_seed(0)
    g = SinGANGenerator(3, 32)
    assert g.body.block1.conv.weight.std().item() == pytest.approx(0.02, rel=0.05)  # 9216 draws
    assert g.head.norm.bias.abs().max() == 0
    assert (g.head.norm.weight - 1).abs().max() < 0.2
    # keys of the authors' GeneratorConcatSkip2CleanAdd / WDiscriminator (num_layer = 5)
    keys = {k.rsplit(".", 1)[0] for k in g.state_dict()}
    assert keys == {"head.conv", "head.norm", "body.block1.conv", "body.block1.norm", "body.block2.conv",
                    "body.block2.norm", "body.block3.conv", "body.block3.norm", "tail.0"}
    d_keys = {k.rsplit(".", 1)[0] for k in SinGANDiscriminator(3, 32).state_dict()}
    assert d_keys == keys - {"tail.0"} | {"tail"}


def test_upsample_reaches_the_next_scale_size():
    x = torch.full((1, 3, 25, 34), 0.5)
    y = upsample(x, (28, 37))
    assert y.shape == (1, 3, 28, 37)
    assert torch.allclose(y, torch.full_like(y, 0.5))


# --- memory estimate ---


def test_parameter_count_formula_matches_the_modules():
    for width, layers in ((32, 5), (128, 5), (8, 3)):
        g, d = SinGANGenerator(3, width, layers), SinGANDiscriminator(3, width, layers)
        assert _net_parameters(3, width, layers, 3) == sum(p.numel() for p in g.parameters())
        assert _net_parameters(3, width, layers, 1) == sum(p.numel() for p in d.parameters())


def test_estimate_grows_with_the_image_and_is_sane():
    small, mid, large = (estimate_peak_bytes(pyramid(h, w).sizes) for h, w in ((40, 30), (120, 90), (250, 188)))
    assert small < mid < large
    assert estimate_peak_bytes(pyramid(250, 188).sizes, batch=2) > large
    assert 100e6 < large < 8e9  # a 250x188 SinGAN trains on one ordinary GPU
    with pytest.raises(GankitError):
        estimate_peak_bytes([])


def test_pyramid_accepts_numpy_sizes():
    np = pytest.importorskip("numpy")
    assert pyramid(np.int64(30), np.int64(40)).sizes == pyramid(30, 40).sizes


def _measured_bytes(sizes: list[tuple[int, int]], base: int) -> int:
    """Bytes really held by the authors' D step at the finest scale, with their retained graphs
    all alive (D(real), D(fake), the gradient penalty's double-backward graph, the G graph),
    counted as the distinct storages autograd saves, plus every net's weights, and the current
    scale's gradients and Adam moments (two per weight; torch.optim.Adam itself costs seconds
    of imports). Deterministic: no allocator or RSS readings."""
    torch.manual_seed(0)
    nets = [(SinGANGenerator(3, channels_at(n, base)), SinGANDiscriminator(3, channels_at(n, base)))
            for n in range(len(sizes))]
    g, d = nets[-1]
    param_ptrs = {p.untyped_storage().data_ptr() for pair in nets for net in pair for p in net.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in param_ptrs:
            saved[s.data_ptr()] = s.nbytes()
        return t

    h, w = sizes[-1]
    real, prev = torch.rand(1, 3, h, w), torch.rand(1, 3, h, w)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fake = g(0.1 * torch.randn_like(prev), prev)
        err_real = -d(real).mean()
        err_fake = d(fake.detach()).mean()
        mix = torch.lerp(fake.detach(), real, torch.rand(())).requires_grad_()
        (grad,) = torch.autograd.grad(d(mix).sum(), mix, create_graph=True)
        penalty = 0.1 * ((grad.norm(2, dim=1) - 1) ** 2).mean()
        (err_real + err_fake + penalty).backward(retain_graph=True)
        (-d(fake).mean()).backward()
    held = sum(saved.values())
    held += sum(4 * p.numel() for pair in nets for net in pair for p in net.parameters())  # weights
    grads = sum(4 * p.grad.numel() for net in (g, d) for p in net.parameters() if p.grad is not None)
    return held + 3 * grads  # the gradients, and Adam's two moments of the same shapes


def test_estimate_is_within_a_factor_of_three_of_a_measured_step():
    sizes = [(25, 33), (40, 48)]  # activations dominate the weights here
    estimate, measured = estimate_peak_bytes(sizes, base=16), _measured_bytes(sizes, base=16)
    assert measured / 3 <= estimate <= measured * 3
    assert estimate >= measured * 0.9  # meant to be conservative
