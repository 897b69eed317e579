"""Spectral normalisation (Miyato et al. 2018, "Spectral Normalization for Generative Adversarial
Networks", arXiv:1802.05957): each weight is divided by its largest singular value, estimated by
one power-iteration step per forward pass, so every layer is 1-Lipschitz.

torch's parametrization keeps the power-iteration vectors ``u``/``v`` as buffers, so they are
saved in checkpoints and a resumed run continues the same estimate.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

SN_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


def apply_spectral_norm(module: nn.Module, eps: float = 1e-6) -> nn.Module:
    """Spectral-normalise every conv, linear and embedding weight inside ``module`` (in place).
    Layers already normalised are left alone. Returns ``module``."""
    for m in list(module.modules()):
        if isinstance(m, SN_LAYERS) and not nn.utils.parametrize.is_parametrized(m, "weight"):
            # ConvTranspose2d keeps output channels in dim 1 (torch's own spectral_norm convention).
            spectral_norm(m, eps=eps, dim=1 if isinstance(m, nn.ConvTranspose2d) else 0)
    return module


def sn(layer: nn.Module, enabled: bool = True) -> nn.Module:
    """``layer`` spectral-normalised when ``enabled``: for building SN networks inline."""
    return apply_spectral_norm(layer) if enabled else layer
