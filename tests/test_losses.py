import math

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
