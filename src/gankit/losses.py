"""Adversarial losses as pure functions of discriminator logits.

Discriminators return raw logits; ``softplus`` forms are the numerically stable equivalents
of ``BCE(sigmoid(logit), target)``:  -log sigmoid(x) = softplus(-x),  -log(1 - sigmoid(x)) = softplus(x).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.errors import GankitError


def d_logistic(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss of Goodfellow et al. 2014, Eq. (1):
    maximise log D(x) + log(1 - D(G(z)))  <=>  minimise softplus(-D(x)) + softplus(D(G(z)))."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss of the original minimax game (Goodfellow 2014, Eq. 1):
    minimise log(1 - D(G(z))) = -softplus(D(G(z))). Saturates early in training (§3)."""
    return -F.softplus(fake_logits).mean()


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss (Goodfellow 2014, §3): maximise log D(G(z)),
    i.e. minimise softplus(-D(G(z))). Same fixed point, strong gradients early on."""
    return F.softplus(-fake_logits).mean()


G_LOSSES = {"nonsaturating": g_nonsaturating, "minimax": g_minimax}
D_LOSSES = {"nonsaturating": d_logistic, "minimax": d_logistic}


def adversarial_losses(name: str):
    """``(d_loss, g_loss)`` for a loss name; a bad name is a user error."""
    if name not in G_LOSSES:
        raise GankitError(f"unknown loss {name!r}; choose from {', '.join(G_LOSSES)}")
    return D_LOSSES[name], G_LOSSES[name]
