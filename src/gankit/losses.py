"""Adversarial losses and regularisers as pure functions of discriminator outputs.

Discriminators return raw logits (critic values for the Wasserstein and hinge losses). The
``softplus`` forms are the numerically stable equivalents of ``BCE(sigmoid(logit), target)``:
-log sigmoid(x) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x).

Families pick a pair by name (``--set loss=hinge``) through :func:`adversarial_losses` and a
regulariser (``--set reg=gp``) through :func:`regularizer`. Content terms of the translation
families that are not plain L1 live here too (:func:`structure_loss`).
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize
from torchvision.transforms.v2 import functional as TF

from gankit.errors import GankitError

Tensor = torch.Tensor


# ---- the games ---------------------------------------------------------------------------------
def in_fp32(loss: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """The loss of logits cast to fp32: under bf16 autocast D's logits come out in bf16 (8 bits of
    mantissa), and the softplus, squares and means of the loss are best taken in full precision,
    as CUDA autocast does for its loss functions."""
    @functools.wraps(loss)
    def wrapped(*logits: Tensor) -> Tensor:
        return loss(*(x.float() for x in logits))
    return wrapped


@in_fp32
def d_logistic(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator loss of Goodfellow et al. 2014, Eq. (1):
    maximise log D(x) + log(1 - D(G(z)))  <=>  minimise softplus(-D(x)) + softplus(D(G(z)))."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


@in_fp32
def g_minimax(fake_logits: Tensor) -> Tensor:
    """Generator loss of the original minimax game (Goodfellow 2014, Eq. 1):
    minimise log(1 - D(G(z))) = -softplus(D(G(z))). Saturates early in training (§3)."""
    return -F.softplus(fake_logits).mean()


@in_fp32
def g_nonsaturating(fake_logits: Tensor) -> Tensor:
    """The non-saturating generator loss (Goodfellow 2014, §3): maximise log D(G(z)),
    i.e. minimise softplus(-D(G(z))). Same fixed point, strong gradients early on."""
    return F.softplus(-fake_logits).mean()


@in_fp32
def d_least_squares(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """LSGAN discriminator (Mao et al. 2017, arXiv:1611.04076, Eq. 2 with the 0-1 coding
    a = 0, b = c = 1): 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]."""
    return 0.5 * (real_logits - 1).square().mean() + 0.5 * fake_logits.square().mean()


@in_fp32
def g_least_squares(fake_logits: Tensor) -> Tensor:
    """LSGAN generator (Mao 2017, Eq. 2): 1/2 E[(D(G(z)) - 1)^2]."""
    return 0.5 * (fake_logits - 1).square().mean()


@in_fp32
def d_wasserstein(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """WGAN critic (Arjovsky et al. 2017, arXiv:1701.07875, Algorithm 1): maximise
    E[f(x)] - E[f(G(z))], i.e. minimise E[f(G(z))] - E[f(x)]. Needs a Lipschitz constraint:
    weight clipping (``clip``) or a gradient penalty (``reg=gp``)."""
    return fake_logits.mean() - real_logits.mean()


@in_fp32
def g_wasserstein(fake_logits: Tensor) -> Tensor:
    """WGAN generator (Arjovsky 2017, Algorithm 1): minimise -E[f(G(z))]."""
    return -fake_logits.mean()


@in_fp32
def d_hinge(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge discriminator loss (Lim & Ye 2017, arXiv:1705.02894; Miyato et al. 2018, Eq. 17):
    E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


LossPair = tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]

# name -> (discriminator loss, generator loss); the hinge generator loss is WGAN's -E[D(G(z))].
LOSSES: dict[str, LossPair] = {
    "nonsaturating": (d_logistic, g_nonsaturating),
    "minimax": (d_logistic, g_minimax),
    "lsgan": (d_least_squares, g_least_squares),
    "wasserstein": (d_wasserstein, g_wasserstein),
    "hinge": (d_hinge, g_wasserstein),
}
# Losses whose D output is a probability logit (so sigmoid(D) is worth logging).
PROBABILISTIC = ("nonsaturating", "minimax")


def adversarial_losses(name: str) -> LossPair:
    """``(d_loss, g_loss)`` for a loss name; a bad name is a user error."""
    if name not in LOSSES:
        raise GankitError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    return LOSSES[name]


def most_realistic(fake_logits: Tensor, fraction: float) -> Tensor:
    """Top-k training (Sinha et al. 2020, "Top-k Training of GANs", arXiv:2002.06224, §3): the
    logits of the ``round(fraction * N)`` fakes (at least one) that D scores most realistic, so that
    G's loss on them gives the other fakes no gradient. Samples far from every mode are those D
    scores lowest, and their gradients can push them further away (§4). Rows are ranked by their
    mean logit (one logit per sample, or per PacGAN pack)."""
    n = fake_logits.shape[0]
    k = max(1, round(fraction * n))
    if k >= n:
        return fake_logits
    scores = fake_logits.detach().reshape(n, -1).float().mean(1)
    return fake_logits[scores.topk(k).indices]


# ---- regularisers ------------------------------------------------------------------------------
def gradient_norms(outputs: Tensor, inputs: Tensor) -> Tensor:
    """Per-sample L2 norm of d(sum outputs)/d(inputs), keeping the graph so a penalty on it
    can be backpropagated (double backprop)."""
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return grad.flatten(1).norm(2, dim=1)


def interpolate(real: Tensor, fake: Tensor) -> Tensor:
    """x_hat = eps x + (1 - eps) x_fake, eps ~ U[0, 1] per sample (Gulrajani 2017, Algorithm 1)."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    return torch.lerp(fake.detach(), real.detach(), eps).requires_grad_(True)


def full_precision(x: Tensor):
    """No autocast inside: the double-backward penalties run in fp32 under ``precision=bf16``
    (gradients of gradients in bf16 lose too much)."""
    return torch.autocast(device_type=x.device.type, enabled=False)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017, arXiv:1704.00028, Eq. 3): E[(||grad f(x_hat)||_2 - 1)^2]
    on random interpolates of real and fake samples (times lambda, 10 in the paper); in fp32."""
    with full_precision(real):
        x_hat = interpolate(real.float(), fake.float())
        return (gradient_norms(critic(x_hat), x_hat) - 1).square().mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """R1 / R2 (Mescheder et al. 2018, arXiv:1801.04406, Eq. 9-10): E[||grad D(x)||^2] on real
    (R1) or fake (R2) samples; the caller multiplies by gamma / 2. In fp32."""
    with full_precision(x):
        x = x.detach().float().requires_grad_(True)
        return gradient_norms(critic(x), x).square().mean()


REGULARIZERS = ("none", "gp", "r1", "r2")


def regularizer(name: str, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor | None:
    """The named penalty on ``critic`` (unweighted), or None for ``none``."""
    if name == "none":
        return None
    if name == "gp":
        return gradient_penalty(critic, real, fake)
    if name == "r1":
        return r1_penalty(critic, real)
    if name == "r2":
        return r1_penalty(critic, fake)
    raise GankitError(f"unknown regulariser {name!r}; choose from {', '.join(REGULARIZERS)}")


@torch.no_grad()
def clip_weights(module: torch.nn.Module, c: float) -> None:
    """WGAN's weight clipping (Arjovsky 2017, Algorithm 1): every parameter into [-c, c]."""
    for p in module.parameters():
        p.clamp_(-c, c)


def orthogonal_regularization(module: torch.nn.Module) -> Tensor:
    """BigGAN's orthogonal regularisation (Brock et al. 2019, arXiv:1809.11096, Eq. 3):
    sum over weight matrices W of ||W^T W (1 - I)||_F^2, i.e. off-diagonal cosine terms only.
    Applied to conv/linear weights (flattened to out x in), not to biases, gains or embeddings."""
    total = None
    for m in module.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.ConvTranspose2d)):
            raw = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            w = raw.flatten(1)  # the raw weight: reading a spectral-normed one would step its power iteration
            gram = w @ w.T
            term = (gram * (1 - torch.eye(gram.shape[0], device=w.device, dtype=w.dtype))).square().sum()
            total = term if total is None else total + term
    if total is None:
        raise GankitError("orthogonal regularisation found no conv/linear weights")
    return total


def structure_loss(x: Tensor, y: Tensor, blur: float = 1.0) -> Tensor:
    """1 - r^2 between the luminance of ``x`` and ``y`` (N, C, H, W) after a Gaussian blur of
    std ``blur`` pixels, averaged over the batch; r is each image pair's Pearson correlation.

    A content term that does not care how the picture is lit: any change of brightness, contrast
    or polarity (``y = a * x + b``, a negative included) costs nothing, so an edit that inverts a
    background keeps the shapes for free, while drawing another shape costs up to 1. The blur makes
    it tolerant of small moves of an edge (a thicker stroke). Related structure terms for
    translation across contrasts: the gradient-correlation loss of Hiasa et al. 2018 ("Cross-modality
    image synthesis from unpaired data using CycleGAN", arXiv:1803.06629) and MIND descriptors (Heinrich et
    al. 2012; Yang et al. 2018, "Unpaired brain MR-to-CT synthesis using a structure-constrained
    CycleGAN"). Measured for StarGAN in ``docs/families/stargan.md``.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise GankitError(f"structure_loss needs two (N, C, H, W) batches of one shape, got {tuple(x.shape)} "
                          f"and {tuple(y.shape)}")

    def smooth_luminance(v: Tensor) -> Tensor:
        lum = TF.rgb_to_grayscale(v) if v.shape[1] == 3 else v.mean(1, keepdim=True)
        if blur > 0:
            k = 2 * int(3 * blur) + 1
            lum = TF.gaussian_blur(lum, [k, k], [blur, blur])
        lum = lum.flatten(1)
        return lum - lum.mean(1, keepdim=True)

    a, b = smooth_luminance(x), smooth_luminance(y)
    r = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-8)
    return (1 - r.square()).mean()


def path_lengths(images: Tensor, ws: Tensor) -> Tensor:
    """Per-sample path lengths of StyleGAN2's regulariser (Karras et al. 2020, arXiv:1912.04958,
    §3.2, Eq. 4): ||J_w^T y||_2 with y ~ N(0, I) / sqrt(H W) (so the length does not depend on the
    resolution), J_w the Jacobian of the images w.r.t. the per-layer latents ``ws`` (N, L, D); the
    squared lengths are averaged over the L layers. The graph is kept so the penalty
    (lengths - a)^2 can be backpropagated."""
    y = torch.randn_like(images) / (images.shape[2] * images.shape[3]) ** 0.5
    (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
    return grad.square().sum(2).mean(1).sqrt()
