"""GAN: Goodfellow et al. 2014, "Generative Adversarial Nets" (arXiv:1406.2661).

The original MLP networks (a ReLU generator; a maxout discriminator with dropout, §5) and the
alternating update of Algorithm 1 with one D step per G step. The update rule here is the
one DCGAN and CGAN inherit: only their networks differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gankit.config import TrainConfig
from gankit.families.base import Batch, Family, Phase
from gankit.losses import adversarial_losses
from gankit.registry import register


@dataclass
class AdversarialConfig(TrainConfig):
    """Options of the two-player game shared by gan, dcgan and cgan."""

    nz: int = 100  # latent size
    lr_g: float = 2e-4  # Adam(2e-4, beta1=0.5): Radford et al. 2015, §4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    loss: str = "nonsaturating"  # nonsaturating | minimax (Goodfellow 2014, §3)


@dataclass
class GANConfig(AdversarialConfig):
    g_hidden: int = 1200  # two ReLU layers of 1200 units in the paper's MNIST generator
    g_layers: int = 2
    d_hidden: int = 240  # two maxout layers of 240 units x 5 pieces in its discriminator
    d_layers: int = 2
    maxout_pieces: int = 5
    dropout: float = 0.5
    # No weight averaging by default: the paper had none, and on the 2-D mixtures this MLP
    # generator hops between modes, so an average of its weights lands between them (ring8,
    # 1,000 steps: median sample radius 0.59 with EMA vs 2.00 without; the true radius is 2).
    ema: bool = False

    PRESETS: ClassVar = {
        "tiny": dict(resolution=8, nz=8, g_hidden=32, d_hidden=16, maxout_pieces=2, batch_size=8, steps=20,
                     log_every=5, snapshot_every=10, checkpoint_every=10, n_snapshot=16),
        "small": dict(resolution=28, nz=64, g_hidden=512, d_hidden=256, maxout_pieces=2, dropout=0.3,
                      batch_size=64, steps=3000, log_every=25, snapshot_every=200, ema_decay=0.995),
        "paper": dict(resolution=28, batch_size=100, steps=50_000),
    }


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013): the max over ``pieces`` affine maps."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.out_features, self.pieces).amax(dim=2)


class MLPGenerator(nn.Module):
    """z (N, nz) -> data of ``shape``; Tanh for images in [-1, 1], linear for points."""

    def __init__(self, nz: int, hidden: int, layers: int, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)
        dims = [nz] + [hidden] * layers
        body: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            body += [nn.Linear(a, b), nn.ReLU(True)]
        body.append(nn.Linear(dims[-1], math.prod(shape)))
        if len(shape) == 3:
            body.append(nn.Tanh())
        self.main = nn.Sequential(*body)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z).view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    """data -> logits (N,), through maxout layers with dropout."""

    def __init__(self, shape: tuple[int, ...], hidden: int, layers: int, pieces: int, dropout: float):
        super().__init__()
        dims = [math.prod(shape)] + [hidden] * layers
        body: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            body += [Maxout(a, b, pieces), nn.Dropout(dropout)]
        body.append(nn.Linear(dims[-1], 1))
        self.main = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x.flatten(1)).flatten()


@register
class GAN(Family):
    name = "gan"
    description = "The original GAN (Goodfellow et al. 2014): MLP generator, maxout discriminator"
    paper = "arXiv:1406.2661"
    Config = GANConfig
    data_kinds = ("image", "points")

    @classmethod
    def build_generator(cls, config, data_shape):
        return MLPGenerator(config.nz, config.g_hidden, config.g_layers, data_shape)

    @classmethod
    def build_discriminators(cls, config, data_shape):
        return {"D": MLPDiscriminator(data_shape, config.d_hidden, config.d_layers, config.maxout_pieces,
                                      config.dropout)}

    def build_optimizers(self):
        c = self.config
        return {
            "G": torch.optim.Adam(self.nets["G"].parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2)),
            "D": torch.optim.Adam(self.nets["D"].parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2)),
        }

    def phases(self):
        self.d_loss_fn, self.g_loss_fn = adversarial_losses(self.config.loss)
        return [
            Phase("D", modules=("D",), optimizer="D", loss=self.discriminator_loss),
            Phase("G", modules=("G",), optimizer="G", loss=self.generator_loss, uses_data=False),
        ]

    def discriminator_loss(self, batch: Batch):
        """One D step on a real batch and as many fakes (Algorithm 1, inner loop with k = 1)."""
        D = self.train_nets["D"]
        with torch.no_grad():
            fake, fake_y = self.fake_batch(batch.x.shape[0], batch.x.device, labels=batch.y)
        real_logits = self.discriminate(D, batch.x, batch.y)
        fake_logits = self.discriminate(D, fake, fake_y)
        loss = self.d_loss_fn(real_logits, fake_logits)
        return loss, {"loss/d": loss.detach(), "d/real": torch.sigmoid(real_logits).mean().detach(),
                      "d/fake": torch.sigmoid(fake_logits).mean().detach()}

    def generator_loss(self, batch: Batch | None):
        """One G step on fresh noise (Algorithm 1, outer update)."""
        fake, fake_y = self.fake_batch(self.config.batch_size, self.device)
        loss = self.g_loss_fn(self.discriminate(self.train_nets["D"], fake, fake_y))
        return loss, {"loss/g": loss.detach()}

    @classmethod
    def discriminate(cls, D: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return D(x, y) if cls.conditional else D(x)

    @property
    def device(self) -> torch.device:
        return next(self.nets[self.generator_key].parameters()).device
