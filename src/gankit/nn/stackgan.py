"""Networks of StackGAN (Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with
Stacked Generative Adversarial Networks", arXiv:1612.03242).

- Conditioning Augmentation (§3.1): a sentence embedding -> mean and log-variance of a Gaussian
  over the conditioning vector c, sampled with the reparameterisation trick, and the KL term
  (Eq. 3/4; its weight lambda = 2 is the family's).
- Stage-I (§3.2): G draws a low-resolution image from (z, c): fc -> 4x4 -> nearest-upsampling
  blocks; D downsamples the image to 4x4 and judges it with the spatially replicated text
  condition.
- Stage-II (§3.3): G encodes Stage-I's image, joins it with a fresh CA sample of the same text,
  refines it with residual blocks and upsamples it; D as Stage-I's at the higher resolution.

Implementation details follow §3.3 / §4 of the paper and the layers of the authors' PyTorch code
(hanzhanggit/StackGAN-Pytorch, ``code/model.py``): up blocks are nearest upsampling + 3x3 conv +
BN + ReLU, down blocks 4x4 stride-2 convs + BN + LeakyReLU(0.2) (no BN on the first), residual
blocks conv3x3-BN-ReLU-conv3x3-BN plus the input, then ReLU; convs carry no bias except the
logit convs; widths are the authors' (``GF_DIM``, ``DF_DIM``), so at :data:`PAPER` size the
parameter counts are theirs (see :func:`parameter_counts` for what differs). Differences:

- Resolutions are general (powers of two >= 16), as is Stage-II's upsampling factor.
- The CA is its own module (the authors' generators each hold one) and its layer is linear: the
  authors' ``CA_NET`` puts a ReLU after the fc, which makes mu >= 0 and sigma >= 1 always; the
  paper (§3.1) has neither. ``glu=True`` gives StackGAN++'s fc to 4 c_dim followed by a GLU.
- Discriminators return logits (the authors' end in a sigmoid); they may compress the text
  embedding with a fully connected layer + LeakyReLU(0.2) first (``compress_dim``, the paper's
  §3.3 with N_d = 128; the authors' PyTorch code instead feeds D the CA's mean, uncompressed) and
  have an unconditional logit too when asked (the authors' Stage-II D has one, their Stage-I D not).

Images are NCHW in [-1, 1]; every network starts with the authors' init (:func:`stackgan_init`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError
from gankit.nn.translation import check_resolution

MIN_WIDTH = 8  # halving widths stop here (only reached at small ngf and high resolutions)


# ---- helpers -------------------------------------------------------------------------------------
def conv3x3(a: int, b: int) -> nn.Conv2d:
    """3x3 stride-1 convolution without bias, 'same' padding."""
    return nn.Conv2d(a, b, 3, 1, 1, bias=False)


def up_block(a: int, b: int) -> nn.Sequential:
    """x2 nearest-neighbour upsampling, 3x3 conv, BN, ReLU (§3.3)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(a, b), nn.BatchNorm2d(b), nn.ReLU(True))


def down_block(a: int, b: int, norm: bool = True) -> nn.Sequential:
    """4x4 stride-2 conv, BN (not on the first block), LeakyReLU(0.2) (§3.3)."""
    return nn.Sequential(nn.Conv2d(a, b, 4, 2, 1, bias=False), *([nn.BatchNorm2d(b)] if norm else []),
                         nn.LeakyReLU(0.2, inplace=True))


class ResBlock(nn.Module):
    """ReLU(x + BN(conv3x3(ReLU(BN(conv3x3(x)))))) (§3.3)."""

    def __init__(self, width: int):
        super().__init__()
        self.block = nn.Sequential(conv3x3(width, width), nn.BatchNorm2d(width), nn.ReLU(True),
                                   conv3x3(width, width), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.block(x))


@torch.no_grad()
def stackgan_init(module: nn.Module) -> nn.Module:
    """The authors' ``weights_init``: conv and linear weights ~ N(0, 0.02), linear biases 0, BN scales
    ~ N(1, 0.02) and shifts 0 (conv biases keep PyTorch's default, as theirs). In place; returns it."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def _positive(what: str, **values: int) -> None:
    bad = {k: v for k, v in values.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1}
    if bad:
        raise GankitError(f"{what} needs positive integer sizes, got {', '.join(f'{k}={v!r}' for k, v in bad.items())}")


def _check_vector(x: torch.Tensor, dim: int, what: str, n: int | None = None) -> None:
    if x.dim() != 2 or x.shape[1] != dim or (n is not None and x.shape[0] != n):
        want = f"({n if n is not None else 'N'}, {dim})"
        raise GankitError(f"{what} must have shape {want}, got {tuple(x.shape)}")


def _check_image(x: torch.Tensor, channels: int, resolution: int, what: str) -> None:
    if x.dim() != 4 or tuple(x.shape[1:]) != (channels, resolution, resolution):
        raise GankitError(f"{what} built for (N, {channels}, {resolution}, {resolution}) images, got {tuple(x.shape)}")


# ---- conditioning augmentation -------------------------------------------------------------------
def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """c = mu + exp(logvar / 2) * eps, eps ~ N(0, I) from ``generator`` (on mu's device) or torch's
    global RNG (§3.1); differentiable in mu and logvar."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) of Eq. 3/4, averaged as the authors' ``KL_loss``:
    the mean over the batch and the c_dim dimensions of -(1 + logvar - mu^2 - exp(logvar)) / 2
    (the KL of one sample is c_dim times the mean over its dimensions). 0 at mu = 0, logvar = 0."""
    return (-0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())).mean()


class ConditioningAugmentation(nn.Module):
    """Sentence embedding ``(N, embed_dim)`` -> (c, mu, logvar), each ``(N, c_dim)`` (§3.1).

    mu and logvar are the two halves of one linear layer's output (``glu=False``), or of a GLU
    over a linear layer to 4 c_dim (``glu=True``, StackGAN++'s CA). c is sampled by
    :func:`reparameterize` with the ``generator`` passed to :meth:`forward`.
    """

    def __init__(self, embed_dim: int, c_dim: int = 128, glu: bool = False):
        super().__init__()
        _positive("ConditioningAugmentation", embed_dim=embed_dim, c_dim=c_dim)
        self.embed_dim, self.c_dim, self.glu = embed_dim, c_dim, glu
        self.fc = nn.Linear(embed_dim, c_dim * (4 if glu else 2))
        stackgan_init(self)

    def encode(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of the conditioning Gaussian."""
        _check_vector(embedding, self.embed_dim, "the text embedding")
        x = self.fc(embedding)
        if self.glu:
            x = F.glu(x, dim=1)
        mu, logvar = x.chunk(2, dim=1)
        return mu, logvar

    def forward(self, embedding: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(embedding)
        return reparameterize(mu, logvar, generator), mu, logvar


# ---- Stage-I -------------------------------------------------------------------------------------
def _halve(width: int) -> int:
    return max(width // 2, MIN_WIDTH)


class StageIGenerator(nn.Module):
    """Stage-I G (§3.2): (z ``(N, z_dim)``, c ``(N, c_dim)``) -> image ``(N, channels, R, R)``.

    [z, c] -> linear (no bias) to 8 ngf x 4 x 4, BN, ReLU -> log2(R / 4) up blocks halving the
    width -> 3x3 conv to ``channels`` -> tanh. At ngf = 128 (the authors' GF_DIM), R = 64:
    1024 x 4 x 4 -> 512 x 8 x 8 -> ... -> 64 x 64 x 64 -> 3 x 64 x 64, the authors' ``STAGE1_G``
    without its CA.
    """

    def __init__(self, z_dim: int = 100, c_dim: int = 128, ngf: int = 128, out_res: int = 64, channels: int = 3):
        super().__init__()
        _positive("StageIGenerator", z_dim=z_dim, c_dim=c_dim, ngf=ngf, channels=channels)
        n = check_resolution(out_res, "StageIGenerator") - 2
        self.z_dim, self.c_dim, self.resolution, self.channels = z_dim, c_dim, out_res, channels
        self.width = width = ngf * 8
        self.fc = nn.Sequential(nn.Linear(z_dim + c_dim, width * 16, bias=False), nn.BatchNorm1d(width * 16),
                                nn.ReLU(True))
        blocks = []
        for _ in range(n):
            blocks.append(up_block(width, _halve(width)))
            width = _halve(width)
        self.up = nn.Sequential(*blocks)
        self.out = nn.Sequential(conv3x3(width, channels), nn.Tanh())
        stackgan_init(self)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        _check_vector(z, self.z_dim, "z")
        _check_vector(c, self.c_dim, "c", z.shape[0])
        h = self.fc(torch.cat([z, c], 1)).view(-1, self.width, 4, 4)
        return self.out(self.up(h))


class StageIDiscriminator(nn.Module):
    """Stage-I D (§3.2, §3.3): image ``(N, channels, R, R)`` and text ``(N, embed_dim)`` -> logits ``(N,)``.

    Image: log2(R / 4) down blocks of ndf x 1, 2, 4, ... channels to 4x4; where that ends wider than
    8 ndf (R > 64), 3x3 convs + BN + LeakyReLU halve it back to 8 ndf (the authors' Stage-II D).
    Text: linear to ``compress_dim`` + LeakyReLU(0.2) (none with ``compress_dim=None``: the
    embedding, e.g. the CA's mu, is used as it is), replicated over 4x4. The conditional logit (the
    authors' ``D_GET_LOGITS``): [features, text] -> ``joint_kernel`` conv (3 in the authors' code, 1
    in the paper) + BN + LeakyReLU -> 4x4 conv to one logit. With ``unconditional=True`` a second
    4x4 conv gives a logit from the image features alone.

    :meth:`features` once per image batch, then :meth:`cond_logits` / :meth:`uncond_logits` (as the
    authors pair real images with right and wrong texts); ``forward(image, text)`` does both,
    ``forward(image)`` gives the unconditional logit.
    """

    def __init__(self, embed_dim: int = 128, ndf: int = 64, resolution: int = 64, channels: int = 3,
                 compress_dim: int | None = 128, unconditional: bool = True, joint_kernel: int = 3):
        super().__init__()
        _positive(type(self).__name__, embed_dim=embed_dim, ndf=ndf, channels=channels)
        if compress_dim is not None:
            _positive(type(self).__name__, compress_dim=compress_dim)
        if joint_kernel not in (1, 3):
            raise GankitError(f"joint_kernel must be 1 or 3, got {joint_kernel!r}")
        n = check_resolution(resolution, type(self).__name__) - 2
        self.embed_dim, self.resolution, self.channels = embed_dim, resolution, channels
        layers: list[nn.Module] = []
        width, prev = ndf, channels
        for i in range(n):
            width = ndf * 2 ** i
            layers.append(down_block(prev, width, norm=i > 0))
            prev = width
        while width > 8 * ndf:
            layers += [conv3x3(width, width // 2), nn.BatchNorm2d(width // 2), nn.LeakyReLU(0.2, inplace=True)]
            width //= 2
        self.encode = nn.Sequential(*layers)
        self.width = width
        self.compress = (nn.Identity() if compress_dim is None else
                         nn.Sequential(nn.Linear(embed_dim, compress_dim), nn.LeakyReLU(0.2, inplace=True)))
        cond = embed_dim if compress_dim is None else compress_dim
        self.joint = nn.Sequential(nn.Conv2d(width + cond, width, joint_kernel, 1, joint_kernel // 2, bias=False),
                                   nn.BatchNorm2d(width), nn.LeakyReLU(0.2, inplace=True))
        self.cond_out = nn.Conv2d(width, 1, 4, 4)
        self.uncond_out = nn.Conv2d(width, 1, 4, 4) if unconditional else None
        stackgan_init(self)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, width, 4, 4)`` image features."""
        _check_image(image, self.channels, self.resolution, type(self).__name__)
        return self.encode(image)

    def cond_logits(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        _check_vector(embedding, self.embed_dim, "the text embedding", features.shape[0])
        t = self.compress(embedding)[:, :, None, None].expand(-1, -1, 4, 4)
        return self.cond_out(self.joint(torch.cat([features, t], 1))).view(-1)

    def uncond_logits(self, features: torch.Tensor) -> torch.Tensor:
        if self.uncond_out is None:
            raise GankitError(f"this {type(self).__name__} has no unconditional logit (built with unconditional=False)")
        return self.uncond_out(features).view(-1)

    def forward(self, image: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(image)
        return self.uncond_logits(h) if embedding is None else self.cond_logits(h, embedding)


# ---- Stage-II ------------------------------------------------------------------------------------
class StageIIGenerator(nn.Module):
    """Stage-II G (§3.3): (Stage-I image ``(N, channels, r, r)``, c ``(N, c_dim)``) -> image
    ``(N, channels, up_factor r, up_factor r)``.

    Encoder: 3x3 conv to ngf + ReLU, then ``n_down`` 4x4 stride-2 convs + BN + ReLU doubling the
    width (r / 4 x r / 4 at the authors' two: 16x16 from 64). c replicated over that grid and
    concatenated -> 3x3 conv + BN + ReLU back to the encoder's width -> ``n_res`` residual blocks ->
    n_down + log2(up_factor) up blocks halving the width -> 3x3 conv to ``channels`` -> tanh.
    At ngf = 128, in_res = 64, up_factor = 4, n_res = 4 it is the authors' ``STAGE2_G`` without
    its CA and the frozen Stage-I G it holds.
    """

    def __init__(self, c_dim: int = 128, ngf: int = 128, in_res: int = 64, channels: int = 3, up_factor: int = 4,
                 n_res: int = 4, n_down: int = 2):
        super().__init__()
        _positive("StageIIGenerator", c_dim=c_dim, ngf=ngf, channels=channels, up_factor=up_factor)
        check_resolution(in_res, "StageIIGenerator")
        if up_factor < 2 or up_factor & (up_factor - 1):
            raise GankitError(f"StageIIGenerator's up_factor must be a power of two >= 2, got {up_factor}")
        if isinstance(n_res, bool) or not isinstance(n_res, int) or n_res < 0:
            raise GankitError(f"StageIIGenerator needs n_res >= 0 residual blocks, got {n_res!r}")
        if isinstance(n_down, bool) or not isinstance(n_down, int) or n_down < 0 or in_res >> n_down < 4:
            raise GankitError(f"StageIIGenerator's n_down must leave at least 4x4 of a {in_res}x{in_res} image, "
                              f"got n_down={n_down!r}")
        self.c_dim, self.in_res, self.channels = c_dim, in_res, channels
        self.resolution = in_res * up_factor
        layers: list[nn.Module] = [conv3x3(channels, ngf), nn.ReLU(True)]
        width = ngf
        for _ in range(n_down):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.ReLU(True)]
            width *= 2
        self.encode = nn.Sequential(*layers)
        self.joint = nn.Sequential(conv3x3(width + c_dim, width), nn.BatchNorm2d(width), nn.ReLU(True))
        self.residual = nn.Sequential(*(ResBlock(width) for _ in range(n_res)))
        blocks = []
        for _ in range(n_down + up_factor.bit_length() - 1):
            blocks.append(up_block(width, _halve(width)))
            width = _halve(width)
        self.up = nn.Sequential(*blocks)
        self.out = nn.Sequential(conv3x3(width, channels), nn.Tanh())
        stackgan_init(self)

    def forward(self, image: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        _check_image(image, self.channels, self.in_res, "StageIIGenerator")
        _check_vector(c, self.c_dim, "c", image.shape[0])
        h = self.encode(image)
        h = self.joint(torch.cat([h, c[:, :, None, None].expand(-1, -1, *h.shape[-2:])], 1))
        return self.out(self.up(self.residual(h)))


class StageIIDiscriminator(StageIDiscriminator):
    """Stage-II D (§3.3): Stage-I's D at the higher resolution (default 256, with the unconditional
    logit as the authors' ``STAGE2_D``); at R = 256 the image path is six down blocks to
    32 ndf x 4 x 4 and two 3x3 convs back to 8 ndf."""

    def __init__(self, embed_dim: int = 128, ndf: int = 64, resolution: int = 256, channels: int = 3,
                 compress_dim: int | None = 128, unconditional: bool = True, joint_kernel: int = 3):
        super().__init__(embed_dim, ndf, resolution, channels, compress_dim, unconditional, joint_kernel)


# ---- sizes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StackGANSize:
    """The sizes of a two-stage StackGAN. ``ngf1`` and ``ngf2`` are the authors' GF_DIM (Stage-I
    G starts at 8 ngf1 channels, Stage-II G's encoder at ngf2), ``ndf`` their DF_DIM.
    ``d_compress`` None: D conditions on the CA's mu (c_dim), as the authors' code does; a number:
    D compresses the sentence embedding (text_dim) to that many dimensions, as the paper says."""

    text_dim: int = 1024
    z_dim: int = 100
    c_dim: int = 128
    ngf1: int = 128
    ngf2: int = 128
    ndf: int = 64
    res1: int = 64
    up_factor: int = 4
    n_res: int = 4
    d_compress: int | None = None
    uncond1: bool = False
    uncond2: bool = True
    channels: int = 3

    @property
    def res2(self) -> int:
        return self.res1 * self.up_factor


# The authors' birds/flowers configuration (cfg.GAN: GF_DIM 128, DF_DIM 64, CONDITION_DIM 128, R_NUM 4;
# Z_DIM 100; TEXT.DIMENSION 1024), 64 -> 256.
PAPER = StackGANSize()
# The CPU preset: 32 -> 64 px, two residual blocks, a 64-d sentence embedding from TextEncoder.
CPU = StackGANSize(text_dim=64, z_dim=64, c_dim=32, ngf1=16, ngf2=16, ndf=16, res1=32, up_factor=2, n_res=2,
                   uncond1=True)


def build_networks(size: StackGANSize = PAPER) -> dict[str, nn.Module]:
    """The six networks of a two-stage StackGAN: ``ca1``, ``g1``, ``d1``, ``ca2``, ``g2``, ``d2``."""
    d_embed = size.c_dim if size.d_compress is None else size.text_dim
    return {
        "ca1": ConditioningAugmentation(size.text_dim, size.c_dim),
        "g1": StageIGenerator(size.z_dim, size.c_dim, size.ngf1, size.res1, size.channels),
        "d1": StageIDiscriminator(d_embed, size.ndf, size.res1, size.channels, size.d_compress, size.uncond1),
        "ca2": ConditioningAugmentation(size.text_dim, size.c_dim),
        "g2": StageIIGenerator(size.c_dim, size.ngf2, size.res1, size.channels, size.up_factor, size.n_res),
        "d2": StageIIDiscriminator(d_embed, size.ndf, size.res2, size.channels, size.d_compress, size.uncond2),
    }


def parameter_counts(size: StackGANSize = PAPER) -> dict[str, int]:
    """Parameters of each network of :func:`build_networks` (built on the meta device: no memory,
    no init). At :data:`PAPER` they equal the authors' modules, with two bookkeeping differences:
    their ``STAGE1_G`` holds its CA (``ca1`` + ``g1`` here), and their ``STAGE2_G`` holds its CA
    and the frozen Stage-I G (``ca2`` + ``g2`` + ``ca1`` + ``g1``)."""
    with torch.device("meta"):
        nets = build_networks(size)
    return {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}


def size_dict(size: StackGANSize) -> dict:
    """The sizes as a plain dict (for a run's config)."""
    return asdict(size)


__all__ = [
    "CPU", "PAPER", "ConditioningAugmentation", "ResBlock", "StackGANSize", "StageIDiscriminator",
    "StageIGenerator", "StageIIDiscriminator", "StageIIGenerator", "build_networks", "conv3x3", "down_block",
    "kl_loss", "parameter_counts", "reparameterize", "size_dict", "stackgan_init", "up_block",
]
