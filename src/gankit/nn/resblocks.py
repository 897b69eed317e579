"""Residual GAN networks of SAGAN and BigGAN.

- Residual up/down blocks of Miyato et al. 2018 ("Spectral Normalization for GANs",
  arXiv:1802.05957, App. B) as used by SAGAN (Zhang et al. 2019, arXiv:1805.08318) and BigGAN
  (Brock, Donahue & Simonyan 2019, arXiv:1809.11096, Fig. 15): G's block is
  BN-ReLU-up-conv3x3-BN-ReLU-conv3x3 with an upsampled 1x1-conv shortcut; D's block is
  (ReLU)-conv3x3-ReLU-conv3x3-avgpool with a 1x1-conv, pooled shortcut.
- Conditional batch norm (de Vries et al. 2017; Dumoulin et al. 2017): BatchNorm without its
  own affine map, then a per-sample gain and bias computed from the condition: a per-class
  embedding (SAGAN, Miyato & Koyama 2018), or linear projections of a vector (BigGAN §3: the
  shared class embedding concatenated with a chunk of z).
- The projection discriminator head (Miyato & Koyama 2018, "cGANs with Projection
  Discriminator", arXiv:1802.05637, Eq. 3): logit = psi(phi(x)) + <embed(y), phi(x)>.

Layer widths follow BigGAN-PyTorch's architectures (``G_arch`` / ``D_arch``), written for any
power-of-two resolution >= 8: at 128x128 G's blocks are 16-16-8-4-2 -> 16-8-4-2-1 times ``ch``
and D's 1-2-4-8-16-16 times ``ch``. Every conv/linear/embedding starts orthogonal (BigGAN's
init); ``spectral_norm`` wraps them all except the conditional gains (plain in both references).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError
from gankit.nn.attention import SelfAttention
from gankit.nn.spectral import sn


# ---- layers --------------------------------------------------------------------------------------
def conv(a: int, b: int, kernel: int, *, spectral_norm: bool = True) -> nn.Module:
    """Conv2d with 'same' padding, orthogonal init, spectral-normalised when asked."""
    layer = nn.Conv2d(a, b, kernel, padding=kernel // 2)
    nn.init.orthogonal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return sn(layer, spectral_norm)


def linear(a: int, b: int, *, spectral_norm: bool = True, bias: bool = True) -> nn.Module:
    layer = nn.Linear(a, b, bias=bias)
    nn.init.orthogonal_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return sn(layer, spectral_norm)


def embedding(n: int, dim: int, *, spectral_norm: bool = False) -> nn.Module:
    layer = nn.Embedding(n, dim)
    nn.init.orthogonal_(layer.weight)
    return sn(layer, spectral_norm)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias depend on a condition: ``BN(x) * (1 + gain(c)) + bias(c)``.

    With ``num_classes`` the condition is a class index and gain/bias are embeddings (zero at
    first: the identity affine map, as Miyato & Koyama's gamma = 1, beta = 0); with
    ``cond_dim`` it is a vector (BigGAN's [shared embedding, z chunk]) and gain/bias are linear
    maps of it without offsets (spectral-normalised when ``spectral_norm``), as BigGAN-PyTorch's ccbn."""

    def __init__(self, num_features: int, *, num_classes: int = 0, cond_dim: int = 0,
                 spectral_norm: bool = True, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if (num_classes > 0) == (cond_dim > 0):
            raise ValueError("ConditionalBatchNorm2d needs exactly one of num_classes and cond_dim")
        self.bn = nn.BatchNorm2d(num_features, affine=False, eps=eps, momentum=momentum)
        if num_classes:
            self.gain, self.bias = nn.Embedding(num_classes, num_features), nn.Embedding(num_classes, num_features)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)
        else:
            self.gain = linear(cond_dim, num_features, spectral_norm=spectral_norm, bias=False)
            self.bias = linear(cond_dim, num_features, spectral_norm=spectral_norm, bias=False)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gain = 1 + self.gain(c).to(x.dtype)
        bias = self.bias(c).to(x.dtype)
        return self.bn(x) * gain[:, :, None, None] + bias[:, :, None, None]


def _norm(layer: nn.Module, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    return layer(x, c) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)


class GBlock(nn.Module):
    """Generator residual block, (N, in, H, W) -> (N, out, 2H, 2W):
    BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus upsample-conv1x1 of the input.
    ``norm(width)`` builds the two norms (plain or conditional BN)."""

    def __init__(self, in_ch: int, out_ch: int, norm, *, spectral_norm: bool = True, upsample: bool = True):
        super().__init__()
        self.upsample = upsample
        self.bn1, self.conv1 = norm(in_ch), conv(in_ch, out_ch, 3, spectral_norm=spectral_norm)
        self.bn2, self.conv2 = norm(out_ch), conv(out_ch, out_ch, 3, spectral_norm=spectral_norm)
        self.shortcut = conv(in_ch, out_ch, 1, spectral_norm=spectral_norm) if in_ch != out_ch or upsample else None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(_norm(self.bn1, x, c))
        if self.upsample:
            h, x = F.interpolate(h, scale_factor=2.0), F.interpolate(x, scale_factor=2.0)
        h = self.conv2(F.relu(_norm(self.bn2, self.conv1(h), c)))
        return h + (x if self.shortcut is None else self.shortcut(x))


class DBlock(nn.Module):
    """Discriminator residual block, (N, in, H, W) -> (N, out, H/2, W/2) when ``downsample``:
    (ReLU)-conv3x3-ReLU-conv3x3-avgpool plus a 1x1-conv, pooled shortcut. The first block sees
    the image: no ReLU in front, and its shortcut pools before the conv (``preactivation=False``)."""

    def __init__(self, in_ch: int, out_ch: int, *, spectral_norm: bool = True, downsample: bool = True,
                 preactivation: bool = True):
        super().__init__()
        self.downsample, self.preactivation = downsample, preactivation
        self.conv1 = conv(in_ch, out_ch, 3, spectral_norm=spectral_norm)
        self.conv2 = conv(out_ch, out_ch, 3, spectral_norm=spectral_norm)
        self.shortcut = conv(in_ch, out_ch, 1, spectral_norm=spectral_norm) if in_ch != out_ch or downsample else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        if self.shortcut is None:
            return h + x
        sc = self._pool(self.shortcut(x)) if self.preactivation else self.shortcut(self._pool(x))
        return h + sc


class ProjectionHead(nn.Module):
    """phi(x) (N, C) -> logits (N,): psi(phi) = w^T phi + b, plus <embed(y), phi> with classes
    (Miyato & Koyama 2018, Eq. 3 and Fig. 1: the inner product with the label's embedding)."""

    def __init__(self, channels: int, num_classes: int = 0, *, spectral_norm: bool = True):
        super().__init__()
        self.psi = linear(channels, 1, spectral_norm=spectral_norm)
        self.embed = embedding(num_classes, channels, spectral_norm=spectral_norm) if num_classes else None

    def forward(self, phi: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = self.psi(phi).squeeze(1)
        if self.embed is not None:
            if y is None:
                raise ValueError("a projection discriminator needs the class labels")
            out = out + (self.embed(y).to(phi.dtype) * phi).sum(1)
        return out


# ---- architectures -------------------------------------------------------------------------------
def num_blocks(resolution: int) -> int:
    """Up/down-sampling blocks between 4x4 and ``resolution`` (a power of two >= 8)."""
    if resolution < 8 or resolution & (resolution - 1):
        raise GankitError(f"residual GAN networks need a power-of-two resolution >= 8, got {resolution}")
    return int(math.log2(resolution)) - 2


def generator_widths(ch: int, resolution: int) -> list[tuple[int, int]]:
    """(in, out) channels of G's n blocks: out_i = ch * min(16, 2^(n-1-i)), the first block's
    input as wide as its output (BigGAN's 128x128 G_arch: 16-16-8-4-2 -> 16-8-4-2-1)."""
    n = num_blocks(resolution)
    outs = [ch * min(16, 2 ** (n - 1 - i)) for i in range(n)]
    return list(zip([outs[0]] + outs[:-1], outs))


def discriminator_widths(channels: int, ch: int, resolution: int) -> list[tuple[int, int, bool]]:
    """(in, out, downsample) of D's blocks: n downsampling blocks to 4x4 of ch * min(16, 2^i)
    channels, then one more at 4x4 (BigGAN's D_arch)."""
    n = num_blocks(resolution)
    outs = [ch * min(16, 2 ** i) for i in range(n + 1)]
    ins = [channels] + outs[:-1]
    return [(a, b, i < n) for i, (a, b) in enumerate(zip(ins, outs))]


def attention_resolutions(resolution: int) -> list[int]:
    """Where self-attention can sit: feature maps both G and D have, 8 .. resolution / 2."""
    return [2 ** k for k in range(3, int(math.log2(resolution)))]


def check_attention(attn_res: int, resolution: int) -> None:
    if attn_res and attn_res not in attention_resolutions(resolution):
        allowed = ", ".join(map(str, attention_resolutions(resolution))) or "none"
        raise GankitError(f"attn_res must be 0 (off) or a feature-map size of both networks at "
                          f"{resolution}x{resolution} ({allowed}), got {attn_res}")


class ResNetGenerator(nn.Module):
    """(z, y) -> images (N, C, R, R) in [-1, 1]: linear -> 4x4, residual up-blocks (self-attention
    after the one that reaches ``attn_res``), BN-ReLU-conv3x3-Tanh.

    Conditioning: none (plain BN); ``num_classes`` alone: class-embedding conditional BN (SAGAN);
    ``num_classes`` and ``shared_dim``: BigGAN's shared embedding and hierarchical latent, z split
    into one chunk for the linear layer and one per block, each block's BNs conditioned on
    [shared(y), its chunk] (Brock et al. §3, Fig. 15a)."""

    def __init__(self, nz: int, ch: int, channels: int, resolution: int, *, attn_res: int = 0,
                 num_classes: int = 0, shared_dim: int = 0, spectral_norm: bool = True):
        super().__init__()
        check_attention(attn_res, resolution)
        widths = generator_widths(ch, resolution)
        self.hierarchical = shared_dim > 0
        self.conditional = num_classes > 0
        if self.hierarchical:
            if not num_classes:
                raise GankitError("a hierarchical latent with a shared embedding needs classes")
            chunks = len(widths) + 1
            size = nz // chunks
            if size < 1:
                raise GankitError(f"nz = {nz} is too small to split into {chunks} chunks (one per block + 1)")
            self.z_chunks = [nz - size * (chunks - 1)] + [size] * (chunks - 1)
            self.shared = embedding(num_classes, shared_dim)
            def norm(w: int) -> nn.Module:
                return ConditionalBatchNorm2d(w, cond_dim=size + shared_dim, spectral_norm=spectral_norm)
        elif num_classes:
            self.z_chunks = [nz]
            def norm(w: int) -> nn.Module:
                return ConditionalBatchNorm2d(w, num_classes=num_classes)
        else:
            self.z_chunks = [nz]
            norm = nn.BatchNorm2d
        self.first_width = widths[0][0]
        self.linear = linear(self.z_chunks[0], self.first_width * 16, spectral_norm=spectral_norm)
        self.blocks = nn.ModuleList(GBlock(a, b, norm, spectral_norm=spectral_norm) for a, b in widths)
        self.attention = nn.ModuleList(
            SelfAttention(b, spectral_norm=spectral_norm) if 2 ** (i + 3) == attn_res else nn.Identity()
            for i, (_, b) in enumerate(widths))
        self.out_bn = nn.BatchNorm2d(widths[-1][1])
        self.out_conv = conv(widths[-1][1], channels, 3, spectral_norm=spectral_norm)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditional and y is None:
            raise ValueError("this generator is class-conditional: pass labels")
        if self.hierarchical:
            zs = torch.split(z, self.z_chunks, dim=1)
            shared = self.shared(y)
            conds = [torch.cat([shared, zi], dim=1) for zi in zs[1:]]
            h = self.linear(zs[0])
        else:
            conds = [y] * len(self.blocks)
            h = self.linear(z)
        h = h.view(z.shape[0], self.first_width, 4, 4)
        for block, attention, c in zip(self.blocks, self.attention, conds):
            h = attention(block(h, c))
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


class ResNetDiscriminator(nn.Module):
    """images (N, C, R, R) [, labels] -> logits (N,): residual down-blocks to 4x4 (self-attention
    after the one that reaches ``attn_res``), one more block, ReLU, sum over positions (phi), and
    a linear head, plus the projection term when ``num_classes``."""

    def __init__(self, channels: int, ch: int, resolution: int, *, attn_res: int = 0, num_classes: int = 0,
                 spectral_norm: bool = True):
        super().__init__()
        check_attention(attn_res, resolution)
        widths = discriminator_widths(channels, ch, resolution)
        self.blocks = nn.ModuleList(
            DBlock(a, b, spectral_norm=spectral_norm, downsample=down, preactivation=i > 0)
            for i, (a, b, down) in enumerate(widths))
        self.attention = nn.ModuleList(
            SelfAttention(b, spectral_norm=spectral_norm) if down and resolution >> (i + 1) == attn_res
            else nn.Identity() for i, (_, b, down) in enumerate(widths))
        self.head = ProjectionHead(widths[-1][1], num_classes, spectral_norm=spectral_norm)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x) (N, C): the last block's ReLU activations summed over positions."""
        h = x
        for block, attention in zip(self.blocks, self.attention):
            h = attention(block(h))
        return F.relu(h).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x), y)
