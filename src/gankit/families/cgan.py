"""CGAN: Mirza & Osindero 2014, "Conditional Generative Adversarial Nets" (arXiv:1411.1784),
built as a conditional DCGAN.

Both players see the label y (§3.2): G gets z concatenated with a learned embedding of y;
D gets the image concatenated with the same kind of embedding broadcast over the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gankit.families.dcgan import DCGAN, DCGANConfig, discriminator_norm
from gankit.nn.dcgan import dcgan_init, discriminator_stack, generator_stack
from gankit.registry import register


@dataclass
class CGANConfig(DCGANConfig):
    embed_dim: int = 16  # size of the learned label embedding fed to G and D


class ConditionalGenerator(nn.Module):
    """(z, y) -> images: G(z | y) with y embedded and concatenated to z."""

    def __init__(self, nz: int, ngf: int, channels: int, resolution: int, num_classes: int, embed_dim: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.main = generator_stack(nz + embed_dim, ngf, channels, resolution)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, self.embed(y)], dim=1)
        return self.main(h[:, :, None, None])


class ConditionalDiscriminator(nn.Module):
    """(x, y) -> logits: D(x | y) with y's embedding broadcast as extra input planes."""

    def __init__(self, channels: int, ndf: int, resolution: int, num_classes: int, embed_dim: int,
                 norm: str = "batch"):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.main = discriminator_stack(channels + embed_dim, ndf, resolution, norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        planes = self.embed(y)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return self.main(torch.cat([x, planes.to(x.dtype)], dim=1)).flatten()


@register
class CGAN(DCGAN):
    name = "cgan"
    description = "Conditional GAN (Mirza & Osindero 2014) as a conditional DCGAN: sample a chosen class"
    paper = "arXiv:1411.1784"
    Config = CGANConfig
    conditional = True

    @classmethod
    def build_generator(cls, config, data_shape):
        G = ConditionalGenerator(config.nz, config.ngf, data_shape[0], config.resolution, config.num_classes,
                                 config.embed_dim)
        dcgan_init(G)
        return G

    @classmethod
    def build_discriminators(cls, config, data_shape):
        D = ConditionalDiscriminator(data_shape[0], config.ndf, config.resolution, config.num_classes,
                                     config.embed_dim, discriminator_norm(config))
        dcgan_init(D)
        return {"D": D}
