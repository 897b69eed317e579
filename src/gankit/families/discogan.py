"""DiscoGAN: Kim, Cha, Kim, Lee & Kim 2017, "Learning to Discover Cross-Domain Relations with
Generative Adversarial Networks" (arXiv:1703.05192).

The same two-way game as CycleGAN (which appeared at the same time), with the paper's own
choices (§3.2, §4): encoder-decoder generators without skips or residual blocks, one logit per
image from each discriminator, the standard GAN loss, and a reconstruction loss in both
directions (L_CONST, a distance between x and G_BA(G_AB(x))); the authors' code measures it with
the squared error, and weighs each generator's loss as GAN + reconstruction. No image pool, no
identity loss, no learning-rate decay; Adam(2e-4, 0.5, 0.999).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gankit.families.cyclegan import CycleConfig, CycleFamily
from gankit.nn.translation import DiscoDiscriminator, DiscoGenerator
from gankit.registry import register


@dataclass
class DiscoGANConfig(CycleConfig):
    loss: str = "nonsaturating"  # the standard GAN loss (§3.2)
    lambda_cycle: float = 1.0  # L_G = L_GAN + L_CONST for each direction (Eq. 5)
    lambda_identity: float = 0.0
    cycle_distance: str = "mse"
    pool_size: int = 0
    decay_from: float = 1.0  # constant learning rate
    resolution: int = 64  # the paper's 64x64

    PRESETS: ClassVar = {
        "tiny": dict(resolution=16, ngf=8, ndf=8, batch_size=4, steps=20, log_every=5, snapshot_every=10,
                     checkpoint_every=10, n_snapshot=4),
        "small": dict(resolution=32, ngf=32, ndf=32, batch_size=32, steps=3000, log_every=25,
                      snapshot_every=250, checkpoint_every=500, n_snapshot=12),
        "paper": dict(resolution=64, batch_size=64, steps=20_000),
    }


@register
class DiscoGAN(CycleFamily):
    name = "discogan"
    description = "unpaired translation: encoder-decoder generators, reconstruction losses (Kim 2017)"
    paper = "arXiv:1703.05192"
    Config = DiscoGANConfig

    @classmethod
    def build_translator(cls, config, cin, cout):
        return DiscoGenerator(cin, cout, config.resolution, ngf=config.ngf)

    @classmethod
    def build_domain_discriminator(cls, config, channels):
        return DiscoDiscriminator(channels, config.resolution, ndf=config.ndf)
