"""WGAN: Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN" (arXiv:1701.07875).

The critic f estimates the Wasserstein-1 distance as E f(x) - E f(G(z)) (no sigmoid, no log);
the generator minimises -E f(G(z)). f must stay Lipschitz: WGAN clips every critic weight to
[-0.01, 0.01] after each step and trains the critic 5 times per generator step with
RMSprop(5e-5) (Algorithm 1). Images use the DCGAN networks (the paper's §4 setup); the 2-D
mixtures use ReLU MLPs (the toy networks of Gulrajani et al. 2017). The estimate is logged as ``loss/wdist``:
unlike a GAN's losses it should fall as samples improve (§4.2, Fig. 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gankit.families.dcgan import DCGAN, DCGANConfig
from gankit.families.gan import MLPDiscriminator, MLPGenerator
from gankit.registry import register

_TINY = dict(resolution=16, nz=16, ngf=8, ndf=8, hidden=32, batch_size=8, steps=20, log_every=5,
             snapshot_every=10, checkpoint_every=10, n_snapshot=16)
_SMALL = dict(resolution=32, nz=64, ngf=32, ndf=32, batch_size=64, log_every=25, snapshot_every=100,
              checkpoint_every=500, ema_decay=0.995)
# the 2-D mixtures: ReLU MLPs of 3 hidden layers and 2-D noise (Gulrajani et al. 2017's toy setup)
# at width 128 instead of 512, batch 128, lr 5e-4, so a run takes CPU minutes; no EMA (an
# average of a generator that hops between modes lands between them; see GANConfig.ema)
_TOY = dict(nz=2, hidden=128, mlp_layers=3, batch_size=128, steps=5000, lr_g=5e-4, lr_d=5e-4, ema=False,
            log_every=50, snapshot_every=500, checkpoint_every=1000)


@dataclass
class WGANConfig(DCGANConfig):
    loss: str = "wasserstein"
    clip: float = 0.01  # Algorithm 1: c = 0.01
    d_steps: int = 5  # n_critic = 5
    optimizer: str = "rmsprop"  # momentum-free: Adam made the critic unstable (§3)
    lr_g: float = 5e-5
    lr_d: float = 5e-5
    hidden: int = 512  # MLP width for 2-D point data
    mlp_layers: int = 3

    PRESETS: ClassVar = {
        "tiny": _TINY,
        # RMSprop at twice the paper's rate: the paper's 5e-5 needs ~100k critic steps
        "small": dict(_SMALL, steps=1500, lr_g=1e-4, lr_d=1e-4),
        "paper": dict(resolution=64, nz=100, ngf=64, ndf=64, batch_size=64, steps=100_000),
        "toy": _TOY,
    }


@register
class WGAN(DCGAN):
    name = "wgan"
    description = "Wasserstein GAN (Arjovsky et al. 2017): critic with weight clipping, 5 critic steps, RMSprop"
    paper = "arXiv:1701.07875"
    Config = WGANConfig
    data_kinds = ("image", "points")

    @classmethod
    def build_generator(cls, config, data_shape):
        if len(data_shape) == 1:  # 2-D points
            return MLPGenerator(config.nz, config.hidden, config.mlp_layers, data_shape)
        return super().build_generator(config, data_shape)

    @classmethod
    def build_discriminators(cls, config, data_shape):
        if len(data_shape) == 1:
            return {"D": MLPDiscriminator(data_shape, config.hidden, config.mlp_layers)}  # ReLU units
        return super().build_discriminators(config, data_shape)
