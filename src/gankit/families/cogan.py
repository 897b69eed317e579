"""CoGAN: Liu & Tuzel 2016, "Coupled Generative Adversarial Networks" (arXiv:1606.07536).

Two GANs, one per domain, learn a joint distribution from unpaired samples of each domain
because they share weights: the generators share their first layers (which decode the
high-level semantics) and keep their last layers private (the low-level rendering of each
domain); the discriminators keep their first layers private and share the later ones (§3).
The same z then gives an aligned pair, e.g. a digit and its edge map, although no training
item pairs them.

Representation, so the engine needs nothing new: a two-domain sample is ONE image with the two
domains side by side, shape (C, R, 2R), left domain A, right domain B: the built-in
``mnist-edges`` and ``mnist-negative``, or any two unpaired domains (``--data A --data-b B``, or a
folder with ``trainA/`` and ``trainB/``), laid side by side in unrelated order
(:func:`~gankit.data.two_domain.side_by_side_unpaired`). G writes both halves; D splits them,
judges each half on its own (so it never learns from how the halves are laid out together) and
returns logits (2N,): domain A's N, then domain B's N. The inherited GAN losses
then sum the two GANs' losses of the paper's Eq. 4 (as means over the 2N halves). A gradient
penalty (``reg=gp|r1|r2``) is taken per pair: on the gradient of both halves' logits w.r.t. the
whole side-by-side image.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gankit.data.builtin import TWO_DOMAIN_BUILTINS
from gankit.data.two_domain import is_domain_folder, load_two_domain, side_by_side_unpaired
from gankit.errors import GankitError
from gankit.families.dcgan import DCGAN, DCGANConfig, discriminator_norm
from gankit.families.gan import pack
from gankit.nn.dcgan import (
    dcgan_init,
    discriminator_stack,
    generator_stack,
    num_upsamplings,
)
from gankit.registry import register


@dataclass
class CoGANConfig(DCGANConfig):
    data: str = "mnist-edges"
    data_b: str = ""  # domain B as its own source (`--data-b`); then `data` is domain A
    # How much of each network is private to a domain; the rest is one shared module. Counted
    # in DCGAN blocks (a strided (transposed) conv with its norm and activation), so the same
    # value means the same thing at any resolution.
    # G: the LAST `private_g_blocks` hidden blocks, plus the output layer (always private), are
    # per domain. 0 shares every hidden layer, as the paper's digit generator does (App.,
    # Table: only the last layer unshared); num_upsamplings(resolution) = two separate GANs.
    private_g_blocks: int = 1
    # D: the FIRST `private_d_blocks` conv blocks are per domain, the later ones and the logit
    # layer are shared (the paper's digit D: first conv private, the rest shared).
    private_d_blocks: int = 1

    PRESETS: ClassVar = {
        "tiny": {"resolution": 16, "nz": 16, "ngf": 8, "ndf": 8, "batch_size": 8, "steps": 20, "log_every": 5,
                 "snapshot_every": 10, "checkpoint_every": 10, "n_snapshot": 16},
        "small": {"resolution": 32, "nz": 64, "ngf": 32, "ndf": 32, "batch_size": 64, "steps": 6000,
                  "log_every": 25, "snapshot_every": 250, "checkpoint_every": 1000, "ema_decay": 0.995},
        # The paper's digit nets at the nearest DCGAN size: 32x32 (its G draws 28x28), G of
        # 512-256-128 channels with every hidden layer shared, batch 128, 25,000 iterations, Adam
        # (2e-4, 0.5). Its D (two conv + max-pool layers, FC 500) is here DCGAN's strided D.
        "paper": {"resolution": 32, "nz": 100, "ngf": 128, "ndf": 32, "private_g_blocks": 0,
                  "private_d_blocks": 1, "batch_size": 128, "steps": 25_000},
    }

    def validate(self) -> None:
        super().validate()
        n = num_upsamplings(self.resolution)  # raises on a resolution DCGAN nets cannot draw
        if not 0 <= self.private_g_blocks <= n or not 0 <= self.private_d_blocks <= n:
            raise GankitError(f"private_g_blocks and private_d_blocks must be in 0..{n} at resolution "
                              f"{self.resolution} (its DCGAN nets have {n} hidden blocks), got "
                              f"{self.private_g_blocks} and {self.private_d_blocks}")


def conv_blocks(stack: nn.Sequential) -> list[nn.Sequential]:
    """A DCGAN stack cut into blocks, each starting at a (transposed) convolution."""
    blocks: list[list[nn.Module]] = []
    for layer in stack:
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            blocks.append([])
        blocks[-1].append(layer)
    return [nn.Sequential(*b) for b in blocks]


class CoupledGenerator(nn.Module):
    """z (N, nz) -> pairs (N, C, R, 2R): a shared trunk, then one private head per domain,
    the two images concatenated along the width (domain A left, B right)."""

    def __init__(self, nz: int, ngf: int, channels: int, resolution: int, private_blocks: int = 1):
        super().__init__()
        blocks = conv_blocks(generator_stack(nz, ngf, channels, resolution))  # hidden blocks + output
        cut = len(blocks) - 1 - private_blocks
        self.shared = nn.Sequential(*blocks[:cut])
        head = nn.Sequential(*blocks[cut:])
        self.private = nn.ModuleList([head, copy.deepcopy(head)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.shared(z[:, :, None, None])
        return torch.cat([head(h) for head in self.private], dim=3)


class CoupledDiscriminator(nn.Module):
    """pairs (N, C, R, 2R) -> logits (2N,): each half through its own private first blocks,
    then both (stacked along the batch) through the shared later blocks and logit layer.
    Logits [:N] judge the left halves (domain A), [N:] the right halves (domain B)."""

    def __init__(self, channels: int, ndf: int, resolution: int, norm: str = "batch", private_blocks: int = 1):
        super().__init__()
        blocks = conv_blocks(discriminator_stack(channels, ndf, resolution, norm))  # hidden blocks + logit
        head = nn.Sequential(*blocks[:private_blocks])
        self.private = nn.ModuleList([head, copy.deepcopy(head)])
        self.shared = nn.Sequential(*blocks[private_blocks:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = split_pair(x)
        h = torch.cat([self.private[0](a), self.private[1](b)], dim=0)
        return self.shared(h).flatten()


def split_pair(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Side-by-side pairs (N, C, R, 2R) -> (domain A, domain B), each (N, C, R, R)."""
    w = x.shape[-1] // 2
    return x[..., :w], x[..., w:]


@register
class CoGAN(DCGAN):
    name = "cogan"
    description = "Coupled GAN (Liu & Tuzel 2016): weight-sharing GANs pair two domains from unpaired data"
    paper = "arXiv:1606.07536"
    Config = CoGANConfig

    @classmethod
    def two_domains(cls, config) -> bool:
        """Whether the run's data are two unpaired sources (rather than a side-by-side built-in)."""
        return bool(config.data_b) or is_domain_folder(config.data)

    @classmethod
    def load_data(cls, config):
        if not cls.two_domains(config):
            return super().load_data(config)
        two = load_two_domain(config.data, paired=False, data_b=config.data_b or None,
                              channels=config.channels or None, channels_b=config.channels or None,
                              resolution=config.resolution, max_images=config.max_images or None)
        dataset = side_by_side_unpaired(two)
        config.channels, config.num_classes = dataset.shape[0], 0
        return dataset

    @classmethod
    def check_config(cls, config, data_kind):
        super().check_config(config, data_kind)
        data = str(config.data).strip().lower()
        if data not in TWO_DOMAIN_BUILTINS and not cls.two_domains(config):
            raise GankitError(
                f"family 'cogan' learns two domains, and {config.data!r} is one: give domain B with "
                f"--data-b, a folder with trainA/ and trainB/, or a two-domain built-in: "
                f"{', '.join(TWO_DOMAIN_BUILTINS)}")
        if config.hflip:
            raise GankitError("hflip would swap the two domains of cogan's side-by-side pairs; use hflip=false")

    @classmethod
    def output_shape(cls, config) -> tuple[int, ...]:
        """A sample is the pair, domain A left of domain B."""
        return (config.channels, config.resolution, 2 * config.resolution)

    @classmethod
    def build_generator(cls, config, data_shape):
        # Only the channels come from data_shape: gankit.load passes (C, R, R) for any family.
        G = CoupledGenerator(config.nz, config.ngf, data_shape[0], config.resolution, config.private_g_blocks)
        dcgan_init(G)
        return G

    @classmethod
    def build_discriminators(cls, config, data_shape):
        c, h, w = data_shape
        if (h, w) != (config.resolution, 2 * config.resolution):
            raise GankitError(f"family 'cogan' needs two-domain pairs of shape (C, {config.resolution}, "
                              f"{2 * config.resolution}) side by side, got {tuple(data_shape)}; use a "
                              f"two-domain built-in: {', '.join(TWO_DOMAIN_BUILTINS)}")
        D = CoupledDiscriminator(c, config.ndf, config.resolution, discriminator_norm(config),
                                 config.private_d_blocks)
        dcgan_init(D)
        return {"D": D}

    def d_input(self, x: torch.Tensor) -> torch.Tensor:
        """As GAN's, but each half is augmented as an image of its own, so translation or
        cutout never moves one domain's pixels into the other's half."""
        augment = self.aux.get("augment")
        if augment is not None:
            x = torch.cat(augment(torch.cat(split_pair(x), dim=0)).chunk(2, dim=0), dim=3)
        return pack(x, self.config.pack)
