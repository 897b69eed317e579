"""DCGAN: Radford, Metz & Chintala 2015, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks" (arXiv:1511.06434).

The GAN game of :mod:`gankit.families.gan` with the paper's convolutional networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gankit.families.gan import GAN, AdversarialConfig
from gankit.nn.dcgan import dcgan_init, discriminator_stack, generator_stack
from gankit.registry import register


@dataclass
class DCGANConfig(AdversarialConfig):
    ngf: int = 64  # generator width at its last hidden layer
    ndf: int = 64  # discriminator width at its first layer
    # D's normalisation: batch | layer | none; auto = batch (the paper), layer with a gradient
    # penalty (per-sample gradients forbid BatchNorm, Gulrajani 2017 §4), none with spectral norm
    d_norm: str = "auto"
    # NHWC convolutions, same arithmetic: 1.04-1.13x in fp32 (paper preset; AVX2 and AMX CPUs),
    # 1.06x in bf16 on AMX (bench/throughput.py, docs/benchmarks.md#speed-issue-18)
    channels_last: bool = True

    PRESETS: ClassVar = {
        "tiny": dict(resolution=16, nz=16, ngf=8, ndf=8, batch_size=8, steps=20, log_every=5,
                     snapshot_every=10, checkpoint_every=10, n_snapshot=16),
        # lr 4e-4 (the paper's 2e-4 doubled): FID 9.16 against 14.50 on the digits at 1,500 steps
        # over 3 seeds (bench/quality_parity.py; docs/benchmarks.md#speed-issue-18)
        "small": dict(resolution=32, nz=64, ngf=32, ndf=32, batch_size=64, steps=1500, log_every=25,
                      snapshot_every=100, checkpoint_every=500, ema_decay=0.995, lr_g=4e-4, lr_d=4e-4),
        "paper": dict(resolution=64, nz=100, ngf=64, ndf=64, batch_size=128, steps=20_000),
    }


class DCGANGenerator(nn.Module):
    """z (N, nz) -> images (N, C, R, R) in [-1, 1]."""

    def __init__(self, nz: int, ngf: int, channels: int, resolution: int):
        super().__init__()
        self.main = generator_stack(nz, ngf, channels, resolution)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """images (N, C, R, R) -> logits (N,)."""

    def __init__(self, channels: int, ndf: int, resolution: int, norm: str = "batch"):
        super().__init__()
        self.main = discriminator_stack(channels, ndf, resolution, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten()


@register
class DCGAN(GAN):
    name = "dcgan"
    description = "Deep convolutional GAN (Radford et al. 2015): strided convs, BatchNorm, Adam(2e-4, 0.5)"
    paper = "arXiv:1511.06434"
    Config = DCGANConfig
    data_kinds = ("image",)

    @classmethod
    def build_generator(cls, config, data_shape):
        G = DCGANGenerator(config.nz, config.ngf, data_shape[0], config.resolution)
        dcgan_init(G)
        return G

    @classmethod
    def build_discriminators(cls, config, data_shape):
        D = DCGANDiscriminator(data_shape[0], config.ndf, config.resolution, discriminator_norm(config))
        dcgan_init(D)
        return {"D": D}


def discriminator_norm(config: DCGANConfig) -> str:
    """The ``d_norm`` option with ``auto`` resolved."""
    if config.d_norm != "auto":
        return config.d_norm
    if config.reg == "gp":
        return "layer"
    return "none" if config.spectral_norm else "batch"
