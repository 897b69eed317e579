"""BigGAN: Brock, Donahue & Simonyan 2019, "Large Scale GAN Training for High Fidelity Natural
Image Synthesis" (arXiv:1809.11096).

SAGAN scaled up, plus what made it scale (§3 and App. B): a class embedding shared by all of
G's conditional BatchNorms (linear projections give each BN its gains and biases), a
hierarchical latent (z split into chunks: one feeds the first linear layer, one joins the
shared embedding at each block), a projection discriminator, self-attention, spectral norm in
G and D, the hinge loss, two D steps per G step, an exponential moving average of G's
weights, and orthogonal regularisation of G (Eq. 3, beta = 1e-4), which makes G amenable to the
truncation trick (§3.1: sample z from a truncated normal, ``gankit sample --truncation 0.5``,
trading variety for fidelity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gankit.errors import GankitError
from gankit.families.sagan import SAGAN, ResNetGANConfig
from gankit.losses import orthogonal_regularization
from gankit.nn.resblocks import ResNetGenerator
from gankit.registry import register


@dataclass
class BigGANConfig(ResNetGANConfig):
    nz: int = 120  # 6 chunks of 20 at 128x128 (5 blocks + the linear layer)
    g_ch: int = 96
    d_ch: int = 96
    shared_dim: int = 128  # the shared class embedding
    attn_res: int = 64
    beta2: float = 0.999  # Adam(0, 0.999) (App. C)
    d_steps: int = 2
    ortho_reg: float = 1e-4  # beta of the orthogonal regularisation of G; 0 = off

    PRESETS: ClassVar = {
        "tiny": {"resolution": 16, "nz": 15, "g_ch": 4, "d_ch": 4, "shared_dim": 8, "attn_res": 8, "batch_size": 8,
                 "steps": 20, "log_every": 5, "snapshot_every": 10, "checkpoint_every": 10, "n_snapshot": 16},
        # MNIST digits on a CPU in minutes (as SAGAN's small preset: G at D's rate)
        "small": {"resolution": 32, "nz": 64, "g_ch": 16, "d_ch": 16, "shared_dim": 32, "attn_res": 16,
                  "batch_size": 32, "steps": 500, "lr_g": 4e-4, "lr_d": 4e-4, "log_every": 25,
                  "snapshot_every": 100, "checkpoint_every": 250, "ema_decay": 0.995},
        # the paper's 128x128 ImageNet model: ch 96, attention at 64, batch 2048, the rates of its
        # App. C (5e-5 for G, 2e-4 for D) and an EMA of decay 0.9999
        "paper": {"resolution": 128, "nz": 120, "g_ch": 96, "d_ch": 96, "shared_dim": 128, "attn_res": 64,
                  "batch_size": 2048, "lr_g": 5e-5, "lr_d": 2e-4, "ema_decay": 0.9999, "steps": 200_000},
    }

    def validate(self) -> None:
        super().validate()
        if self.shared_dim < 1 or self.ortho_reg < 0:
            raise GankitError("shared_dim must be >= 1 and ortho_reg >= 0")


@register
class BigGAN(SAGAN):
    name = "biggan"
    description = "BigGAN (Brock et al. 2019): shared embedding, hierarchical z, ortho reg, truncation trick"
    paper = "arXiv:1809.11096"
    Config = BigGANConfig
    conditional = True

    @classmethod
    def is_conditional(cls, config) -> bool:
        return True

    @classmethod
    def build_generator(cls, config, data_shape):
        return ResNetGenerator(config.nz, config.g_ch, data_shape[0], config.resolution, attn_res=config.attn_res,
                               num_classes=config.num_classes, shared_dim=config.shared_dim,
                               spectral_norm=config.g_spectral_norm)

    def generator_loss(self, batch):
        """The hinge generator loss plus beta * R_ortho(G) (Eq. 3), logged as ``loss/ortho``."""
        loss, logs = super().generator_loss(batch)
        if self.config.ortho_reg > 0:
            ortho = orthogonal_regularization(self.nets[self.generator_key])
            logs["loss/ortho"] = ortho.detach()
            loss = loss + self.config.ortho_reg * ortho
        return loss, logs
