"""DiscoGAN: Kim, Cha, Kim, Lee & Kim 2017, "Learning to Discover Cross-Domain Relations with
Generative Adversarial Networks" (arXiv:1703.05192).

The same two-way game as CycleGAN (which appeared at the same time), with the paper's own
choices (§3.2, §4): encoder-decoder generators without skips or residual blocks, one logit per
image from each discriminator, the standard GAN loss, and a reconstruction loss in both
directions (L_CONST, a distance between x and G_BA(G_AB(x))); the authors' code measures it with
the squared error, and weighs each generator's loss as GAN + reconstruction. No image pool, no
identity loss, no learning-rate decay; Adam(2e-4, 0.5, 0.999).

Two choices of the authors' code (SKTBrain/DiscoGAN), not in the paper, are options:
``feature_matching`` gives that share of each adversarial term to feature matching (the squared
distance between the mean D features of real and fake images in each batch-normed layer, Salimans
et al. 2016), and ``gan_curriculum`` steps weigh the reconstruction 0.01 against 0.99 for the
adversarial terms before the 1:1 of Eq. 5 (the code: 10,000 iterations; default 0, off).
Feature matching is on by default at the code's 0.9: with the plain GAN loss the generators
collapsed on unpaired grey -> class-colour digits (10.8% of digits kept), with it 99.3% are kept
(``bench/translate.py``, ``docs/families/discogan.md``); ``feature_matching=0`` is the paper's loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from gankit.errors import GankitError
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
    feature_matching: float = 0.9  # share of the adversarial term given to feature matching (the code's; 0 = paper)
    gan_curriculum: int = 0  # steps with the reconstruction weighed 0.01:0.99 first (code: 10,000)
    # NHWC convolutions, same arithmetic: small preset 1.16x in fp32, 1.22-1.28x in bf16 on an AMX CPU
    # (bench/results/family_speed_channels_last.json)
    channels_last: bool = True

    PRESETS: ClassVar = {
        "tiny": dict(resolution=16, ngf=8, ndf=8, batch_size=4, steps=20, log_every=5, snapshot_every=10,
                     checkpoint_every=10, n_snapshot=4),
        "small": dict(resolution=32, ngf=32, ndf=32, batch_size=32, steps=3000, log_every=25,
                      snapshot_every=250, checkpoint_every=500, n_snapshot=12),
        "paper": dict(resolution=64, batch_size=64, steps=20_000),
    }

    def validate(self) -> None:
        super().validate()
        if not 0 <= self.feature_matching <= 1 or self.gan_curriculum < 0:
            raise GankitError("feature_matching must be in 0..1 and gan_curriculum >= 0")


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

    def cycle_weight(self) -> float:
        early = self.step_under_way < self.config.gan_curriculum
        return self.config.lambda_cycle * (0.01 / 0.99 if early else 1.0)

    def generator_adversarial(self, D: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        share = self.config.feature_matching
        if share == 0:
            return super().generator_adversarial(D, fake, real)
        logits, fake_features = D(fake, return_features=True)
        with torch.no_grad():
            real_features = D(real, return_features=True)[1]
        matching = sum(F.mse_loss(f.mean(0), r.mean(0)) for f, r in zip(fake_features, real_features))
        return (1 - share) * self.g_loss(logits) + share * matching
