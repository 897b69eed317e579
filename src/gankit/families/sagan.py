"""SAGAN: Zhang, Goodfellow, Metaxas & Odena 2019, "Self-Attention Generative Adversarial
Networks" (arXiv:1805.08318).

Residual G and D with a self-attention block in both (§3, at the ``attn_res`` feature map),
spectral normalisation in G as well as D (§4.1: it keeps G's gradients from escalating), the
hinge loss, and the two time-scale update rule of Heusel et al. 2017 (§4.2): Adam(0, 0.9) with
lr 1e-4 for G and 4e-4 for D, one D step per G step. With labelled data G uses conditional
BatchNorm and D is a projection discriminator (Miyato & Koyama 2018, arXiv:1802.05637), as in
the paper's ImageNet runs; unlabelled data (or ``class_conditional=false``) gets plain BN and a
plain D.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gankit.families.gan import GAN, AdversarialConfig
from gankit.nn.resblocks import (
    ResNetDiscriminator,
    ResNetGenerator,
    check_attention,
    num_blocks,
)
from gankit.registry import register


@dataclass
class ResNetGANConfig(AdversarialConfig):
    """Options SAGAN and BigGAN share."""

    nz: int = 128
    g_ch: int = 64  # G width unit: blocks of g_ch * (16, 8, 4, 2, 1) channels at 128x128
    d_ch: int = 64  # D width unit: blocks of d_ch * (1, 2, 4, 8, 16, 16)
    attn_res: int = 32  # feature-map size of the self-attention block in G and D; 0 = none
    g_spectral_norm: bool = True  # SN in G too (SAGAN §4.1); `spectral_norm` is D's
    spectral_norm: bool = True
    loss: str = "hinge"
    lr_g: float = 1e-4  # TTUR (SAGAN §4.2)
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.9
    # NHWC convolutions, same arithmetic: small preset 1.26-1.28x (SAGAN) and 1.24-1.27x (BigGAN)
    # in fp32, 1.35x and 1.29-1.37x in bf16 on an AMX CPU (bench/results/family_speed_channels_last.json)
    channels_last: bool = True

    def validate(self) -> None:
        super().validate()
        num_blocks(self.resolution)
        check_attention(self.attn_res, self.resolution)


@dataclass
class SAGANConfig(ResNetGANConfig):
    class_conditional: bool = True  # with labelled data: conditional BN in G, projection D

    PRESETS: ClassVar = {
        "tiny": {"resolution": 16, "nz": 16, "g_ch": 4, "d_ch": 4, "attn_res": 8, "batch_size": 8, "steps": 20,
                 "log_every": 5, "snapshot_every": 10, "checkpoint_every": 10, "n_snapshot": 16},
        # MNIST digits on a CPU in minutes: G at the same rate as D (with TTUR's 1e-4 for G the
        # digits were still unreadable after 800 steps; at 4e-4 they are clear, docs/families/sagan.md)
        "small": {"resolution": 32, "nz": 64, "g_ch": 16, "d_ch": 16, "attn_res": 16, "batch_size": 32,
                  "steps": 800, "lr_g": 4e-4, "lr_d": 4e-4, "log_every": 25, "snapshot_every": 100,
                  "checkpoint_every": 200, "ema_decay": 0.995},
        # the paper's 128x128 ImageNet model (attention on the 32x32 features, batch 256)
        "paper": {"resolution": 128, "nz": 128, "g_ch": 64, "d_ch": 64, "attn_res": 32, "batch_size": 256,
                  "steps": 1_000_000},
    }


@register
class SAGAN(GAN):
    name = "sagan"
    description = "Self-attention GAN (Zhang et al. 2019): residual nets, attention, SN in G and D, hinge, TTUR"
    paper = "arXiv:1805.08318"
    Config = SAGANConfig
    data_kinds = ("image",)

    @classmethod
    def is_conditional(cls, config) -> bool:
        return bool(config.class_conditional) and config.num_classes >= 2

    @classmethod
    def build_generator(cls, config, data_shape):
        return ResNetGenerator(config.nz, config.g_ch, data_shape[0], config.resolution, attn_res=config.attn_res,
                               num_classes=config.num_classes if cls.is_conditional(config) else 0,
                               spectral_norm=config.g_spectral_norm)

    @classmethod
    def build_discriminators(cls, config, data_shape):
        return {"D": ResNetDiscriminator(data_shape[0], config.d_ch, config.resolution, attn_res=config.attn_res,
                                         num_classes=config.num_classes if cls.is_conditional(config) else 0,
                                         spectral_norm=config.spectral_norm)}
