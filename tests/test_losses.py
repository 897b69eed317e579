import math

import pytest
import torch

from gankit.losses import adversarial_losses, d_logistic, g_minimax, g_nonsaturating


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_losses_match_the_log_likelihood_forms_by_hand():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    # D maximises log D(x) + log(1 - D(G(z)))  (Goodfellow 2014, Eq. 1)
    expected_d = -(math.log(_sigmoid(2.0)) + math.log(_sigmoid(-1.0))) / 2 \
                 - (math.log(1 - _sigmoid(0.5)) + math.log(1 - _sigmoid(-3.0))) / 2
    assert math.isclose(d_logistic(real, fake).item(), expected_d, rel_tol=1e-6)
    # G minimises log(1 - D(G(z))) (minimax) or -log D(G(z)) (non-saturating)
    expected_mm = (math.log(1 - _sigmoid(0.5)) + math.log(1 - _sigmoid(-3.0))) / 2
    expected_ns = -(math.log(_sigmoid(0.5)) + math.log(_sigmoid(-3.0))) / 2
    assert math.isclose(g_minimax(fake).item(), expected_mm, rel_tol=1e-6)
    assert math.isclose(g_nonsaturating(fake).item(), expected_ns, rel_tol=1e-6)


def test_nonsaturating_loss_keeps_gradients_where_minimax_saturates():
    fake = torch.tensor([-8.0], requires_grad=True)  # D confidently rejects the fake
    (g_mm,) = torch.autograd.grad(g_minimax(fake), fake)
    fake2 = fake.detach().clone().requires_grad_(True)
    (g_ns,) = torch.autograd.grad(g_nonsaturating(fake2), fake2)
    assert abs(g_mm.item()) < 1e-3 < abs(g_ns.item())


def test_losses_are_stable_for_huge_logits():
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(d_logistic(big, big)) and torch.isfinite(g_nonsaturating(big))


def test_unknown_loss_is_a_user_error():
    import pytest

    from gankit.errors import GankitError

    with pytest.raises(GankitError, match="nonsaturating"):
        adversarial_losses("hinge-ish")


# ---- the other games, by hand -------------------------------------------------------------------
REAL, FAKE = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.5, -3.0, 1.5])


def test_least_squares_losses_by_hand():
    d, g = adversarial_losses("lsgan")
    expected_d = 0.5 * ((2 - 1) ** 2 + (-1 - 1) ** 2 + (0.5 - 1) ** 2) / 3 + 0.5 * (0.25 + 9 + 2.25) / 3
    expected_g = 0.5 * ((0.5 - 1) ** 2 + (-3 - 1) ** 2 + (1.5 - 1) ** 2) / 3
    assert math.isclose(d(REAL, FAKE).item(), expected_d, rel_tol=1e-6)
    assert math.isclose(g(FAKE).item(), expected_g, rel_tol=1e-6)


def test_wasserstein_and_hinge_losses_by_hand():
    d, g = adversarial_losses("wasserstein")
    assert math.isclose(d(REAL, FAKE).item(), (0.5 - 3 + 1.5) / 3 - (2 - 1 + 0.5) / 3, rel_tol=1e-6)
    assert math.isclose(g(FAKE).item(), -(0.5 - 3 + 1.5) / 3, rel_tol=1e-6)
    d, g = adversarial_losses("hinge")
    # max(0, 1 - D(x)): 0, 2, 0.5; max(0, 1 + D(G(z))): 1.5, 0, 2.5
    assert math.isclose(d(REAL, FAKE).item(), (0 + 2 + 0.5) / 3 + (1.5 + 0 + 2.5) / 3, rel_tol=1e-6)
    assert math.isclose(g(FAKE).item(), -(0.5 - 3 + 1.5) / 3, rel_tol=1e-6)


def test_gradient_penalty_matches_autograd_on_known_critics():
    from gankit.losses import gradient_penalty, interpolate, r1_penalty, regularizer

    a = torch.tensor([3.0, 4.0])  # linear critic f(x) = a.x: ||grad|| = 5 everywhere
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert math.isclose(gradient_penalty(lambda x: x @ a, real, fake).item(), (5 - 1) ** 2, rel_tol=1e-6)
    # f(x) = sum x^2: grad = 2 x_hat at the interpolate; same eps via the same seed
    torch.manual_seed(0)
    gp = gradient_penalty(lambda x: x.square().flatten(1).sum(1), real, fake)
    torch.manual_seed(0)
    x_hat = interpolate(real, fake).detach()
    expected = ((2 * x_hat).norm(dim=1) - 1).square().mean()
    assert torch.allclose(gp, expected, rtol=1e-6)
    # the penalty is differentiable w.r.t. the critic's parameters (double backprop)
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    (grad_w,) = torch.autograd.grad(gradient_penalty(lambda x: (x * w).square().sum(1), real, fake), w)
    assert torch.isfinite(grad_w).all() and grad_w.abs().sum() > 0
    # R1 on reals, R2 on fakes: E ||grad f(x)||^2 = E ||2x||^2
    f = lambda x: x.square().sum(1)  # noqa: E731
    assert torch.allclose(r1_penalty(f, real), (2 * real).square().sum(1).mean())
    assert torch.allclose(regularizer("r2", f, real, fake), (2 * fake).square().sum(1).mean())
    assert regularizer("none", f, real, fake) is None


def test_weight_clipping_and_orthogonal_regularisation():
    from gankit.losses import clip_weights, orthogonal_regularization

    lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0]]))
    # off-diagonal of W W^T: 1*0.5 + 0 + 0 = 0.5, counted twice (symmetric): 2 * 0.5^2
    assert math.isclose(orthogonal_regularization(lin).item(), 0.5, rel_tol=1e-6)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0]]))
    assert orthogonal_regularization(lin).item() == 0.0
    clip_weights(lin, 0.01)
    assert all(p.abs().max() <= 0.01 for p in lin.parameters())


def _structure_reference(x, y, blur):
    """1 - r^2 of the BT.601 luminance blurred by scipy (mirror = torch's reflect padding), by numpy."""
    import numpy as np
    from scipy.ndimage import gaussian_filter

    def lum(v):
        v = v.double().numpy()
        g = 0.2989 * v[:, 0] + 0.587 * v[:, 1] + 0.114 * v[:, 2]
        return np.stack([gaussian_filter(im, blur, mode="mirror", truncate=3.0) for im in g])

    a, b = lum(x), lum(y)
    r = [np.corrcoef(p.ravel(), q.ravel())[0, 1] for p, q in zip(a, b)]
    return float(np.mean(1 - np.square(r)))


def test_structure_loss_matches_a_numpy_reference_and_ignores_brightness_and_polarity():
    import pytest

    from gankit.errors import GankitError
    from gankit.losses import structure_loss

    torch.manual_seed(0)
    x, y = torch.rand(3, 3, 16, 16) * 2 - 1, torch.rand(3, 3, 16, 16) * 2 - 1
    assert structure_loss(x, y, 1.0).item() == pytest.approx(_structure_reference(x, y, 1.0), abs=1e-5)
    assert structure_loss(x, y, 0.0).item() == pytest.approx(_structure_reference(x, y, 1e-9), abs=1e-5)
    assert structure_loss(x, -0.5 * x + 0.3, 1.0).item() == pytest.approx(0.0, abs=1e-5)  # inverted, dimmed
    square = torch.full((1, 3, 16, 16), -1.0)
    square[..., 4:9, 4:9] = 1.0
    moved = torch.roll(square, 1, dims=-1)
    assert structure_loss(square, moved, 1.0) < 0.5 * structure_loss(square, moved, 0.0)  # a moved edge
    with pytest.raises(GankitError, match="one shape"):
        structure_loss(x, y[:, :, :8])


@pytest.mark.parametrize("penalty", ["gp", "r1"])
def test_double_backward_penalties_run_in_fp32_under_bf16_autocast(penalty):
    """precision=bf16 must not reach the gradient-of-gradient penalties: the same value as fp32."""
    from gankit.losses import gradient_penalty, r1_penalty

    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.LeakyReLU(0.2), torch.nn.Flatten(),
                                 torch.nn.Linear(8 * 6 * 6, 1))
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)

    def value():
        torch.manual_seed(1)  # the GP's interpolation weights
        return gradient_penalty(critic, real, fake) if penalty == "gp" else r1_penalty(critic, real)

    plain = value()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = value()
    assert mixed.dtype == torch.float32 and torch.equal(mixed, plain)


@pytest.mark.parametrize("name", ["nonsaturating", "minimax", "lsgan", "wasserstein", "hinge"])
def test_losses_of_bf16_logits_are_taken_in_fp32(name):
    """Under bf16 autocast D's logits are bf16; every loss casts them up first: its value and the
    logits' gradient are those of the fp32 computation on the same (bf16-exact) values."""
    d_loss, g_loss = adversarial_losses(name)
    real, fake = torch.randn(64).bfloat16(), torch.randn(64).bfloat16()
    for loss, args in ((d_loss, (real, fake)), (g_loss, (fake,))):
        low = [x.clone().requires_grad_(True) for x in args]
        full = [x.float().requires_grad_(True) for x in args]
        value, want = loss(*low), loss(*full)
        value.backward()
        want.backward()
        assert value.dtype == torch.float32 and torch.equal(value, want)
        for a, b in zip(low, full):
            assert torch.allclose(a.grad.float(), b.grad, rtol=1e-2, atol=0)
