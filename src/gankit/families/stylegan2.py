"""StyleGAN2: Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, "Analyzing and Improving
the Image Quality of StyleGAN" (arXiv:1912.04958), config F, with the training setup of
stylegan2-ada (Karras et al. 2020, arXiv:2006.06676).

The networks are in :mod:`gankit.nn.stylegan2`. The update rule, as the authors'
``training/loss.py``: the non-saturating logistic loss; lazy R1 on real images every 16 D steps
and path-length regularisation every 4 G steps (§3.2, Eq. 4: a = moving mean of the lengths,
decay 0.01, on half the batch), each weighted by its interval and with Adam's rate and betas
adjusted by interval / (interval + 1) (App. B); style-mixing regularisation (StyleGAN §3.1: with
probability 0.9 a second z drives the layers after a random crossover); an EMA of G; a
tracked mean w for the truncation trick. ``augment=ada|diffaugment`` as for the other families.

Presets follow the authors' ``train.py``: ``paper256``, ``paper512``, ``paper1024`` (``paper`` =
``paper1024``, config F) are its published cfg specs (batch = the global minibatch: on N GPUs
pass ``--batch-size mb/N``); ``small`` uses its ``auto`` rules (2 mapping layers, gamma =
0.0002 R^2 / batch) at widths that suit a laptop CPU; ``tiny`` is for tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.families.base import Batch, Phase
from gankit.families.gan import GAN, AdversarialConfig, make_optimizer
from gankit.losses import adversarial_losses, path_lengths
from gankit.nn.ranks import mean_across_ranks
from gankit.nn.stylegan2 import NOISE_MODES, Discriminator, Generator
from gankit.registry import register


def _paper(resolution: int, batch: int, mbstd: int, fmaps: float, lr: float, gamma: float, ema_kimg: float):
    """One of stylegan2-ada's cfg_specs as a preset: 25,000 kimg, 8 mapping layers, EMA half-life
    of ``ema_kimg`` thousand images (beta = 0.5 ** (batch / (ema_kimg * 1000)))."""
    return dict(resolution=resolution, batch_size=batch, mbstd_group=mbstd, channel_base=int(fmaps * 32768),
                channel_max=512, lr_g=lr, lr_d=lr, r1_gamma=gamma, map_layers=8, nz=512, w_dim=512,
                ema_decay=0.5 ** (batch / (ema_kimg * 1000)), steps=25_000_000 // batch, snapshot_every=1000,
                checkpoint_every=5000, log_every=100)


@dataclass
class StyleGAN2Config(AdversarialConfig):
    nz: int = 512  # z_dim
    w_dim: int = 512
    map_layers: int = 8  # mapping depth (8 in the paper; stylegan2-ada's `auto` uses 2)
    map_lr_mul: float = 0.01  # the mapping network's learning-rate multiplier (StyleGAN §C)
    channel_base: int = 32768  # feature maps at resolution R: min(channel_base / R, channel_max)
    channel_max: int = 512
    conv_clamp: float = 256.0  # clamp conv activations to +-256 (the authors' configs); 0 = off
    mbstd_group: int = 4  # minibatch stddev group size
    # NHWC convolutions, same arithmetic: small preset 1.12-1.15x in fp32 on an AMX CPU
    # (bench/results/family_speed_channels_last.json)
    channels_last: bool = True
    lr_g: float = 0.002
    lr_d: float = 0.002
    beta1: float = 0.0  # Adam(0, 0.99, eps 1e-8)
    beta2: float = 0.99
    r1_gamma: float = 10.0  # R1 weight gamma (the penalty is gamma / 2 E||grad D(x)||^2)
    d_reg_interval: int = 16  # lazy R1: every 16th step (0 = off)
    pl_weight: float = 2.0  # path-length regularisation weight (0 = off)
    pl_decay: float = 0.01  # decay of its moving mean a
    pl_batch_shrink: int = 2  # it runs on batch / 2 samples
    g_reg_interval: int = 4  # lazy path-length: every 4th step (0 = off)
    style_mixing: float = 0.9  # probability of mixing two ws in a training sample

    PRESETS: ClassVar = {
        "tiny": dict(resolution=16, nz=16, w_dim=16, map_layers=2, channel_base=64, channel_max=16, mbstd_group=4,
                     batch_size=8, steps=20, log_every=5, snapshot_every=10, checkpoint_every=10, n_snapshot=16,
                     r1_gamma=0.01, ema_decay=0.99),
        # 64x64 faces on a CPU, chosen for quality per CPU minute (bench/faces_budget.py, docs/
        # families/stylegan2.md): stylegan2-ada's `auto` rules (2 mapping layers, group 4,
        # lr 0.0025, gamma = 0.0002 R^2 / batch, EMA half-life batch * 10 / 32 thousand images)
        # and its `cifar` choice for small images (no path-length regulariser), with ADA; 64 maps
        # up to 16 px, 32 at 32 px, 16 at 64 px (half the cost per image of 64/32 maps) and
        # batch 8 (more updates per minute): on the 304 East Asian faces these gave the best SWD
        # and face FID after 10 minutes of the candidates tried
        "small": dict(resolution=64, nz=256, w_dim=256, map_layers=2, channel_base=1024, channel_max=64,
                      mbstd_group=4, batch_size=8, lr_g=0.0025, lr_d=0.0025, r1_gamma=0.1024, pl_weight=0.0,
                      augment="ada", ema_decay=0.5 ** (8 / 2_500), steps=20_000, log_every=50,
                      snapshot_every=500, checkpoint_every=1000, hflip=True),
        "paper256": _paper(256, batch=64, mbstd=8, fmaps=0.5, lr=0.0025, gamma=1.0, ema_kimg=20),
        "paper512": _paper(512, batch=64, mbstd=8, fmaps=1.0, lr=0.0025, gamma=0.5, ema_kimg=20),
        "paper1024": _paper(1024, batch=32, mbstd=4, fmaps=1.0, lr=0.002, gamma=2.0, ema_kimg=10),
        "paper": _paper(1024, batch=32, mbstd=4, fmaps=1.0, lr=0.002, gamma=2.0, ema_kimg=10),
    }

    def validate(self) -> None:
        super().validate()
        r = self.resolution
        if r < 8 or r & (r - 1):
            raise GankitError(f"stylegan2 needs a power-of-two resolution >= 8, got {r}")
        if self.loss != "nonsaturating" or self.reg != "none" or self.d_steps != 1 or self.g_steps != 1 or self.pack != 1 \
                or self.clip or self.spectral_norm:
            raise GankitError("stylegan2 trains with its own loss and regularisers (non-saturating, lazy R1, "
                              "path length): leave loss, reg, d_steps, g_steps, pack, clip and spectral_norm at their "
                              "defaults and set r1_gamma / pl_weight instead")
        for name in ("nz", "w_dim", "map_layers", "channel_base", "channel_max", "mbstd_group", "pl_batch_shrink"):
            if getattr(self, name) < 1:
                raise GankitError(f"{name} must be >= 1, got {getattr(self, name)}")
        if min(self.r1_gamma, self.pl_weight, self.d_reg_interval, self.g_reg_interval, self.conv_clamp) < 0:
            raise GankitError("r1_gamma, pl_weight, the reg intervals and conv_clamp must be >= 0")
        if not 0 <= self.style_mixing <= 1 or not 0 < self.pl_decay <= 1 or not 0 < self.map_lr_mul < math.inf:
            raise GankitError("style_mixing must be in [0, 1], pl_decay in (0, 1], map_lr_mul > 0")


def num_ws(config: StyleGAN2Config) -> int:
    """Per-layer latents of the synthesis network: 2 log2(R) - 2 (14 at 256x256, 18 at 1024x1024)."""
    return 2 * int(math.log2(config.resolution)) - 2


class PathLengthMean(nn.Module):
    """The moving mean a of the path lengths, checkpointed with the run (a family aux module)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("value", torch.zeros([]))


@register
class StyleGAN2(GAN):
    name = "stylegan2"
    description = "StyleGAN2 (Karras et al. 2020): mapping network, modulated convs, noise, lazy R1 + path length"
    paper = "arXiv:1912.04958"
    Config = StyleGAN2Config
    # small preset on a 2-core AMX Xeon: 39.7 img/s in fp32, 39.1 in bf16 (modulated grouped convs)
    bf16_on_cpu = False
    data_kinds = ("image",)
    truncation_space = "w"
    style_based = True
    linear_output = True  # the last ToRGB is linear, as the reference's
    architecture_keys = ("resolution", "channels", "nz", "w_dim", "map_layers", "map_lr_mul", "channel_base",
                         "channel_max", "conv_clamp")

    @classmethod
    def build_generator(cls, config, data_shape):
        return Generator(config.nz, config.w_dim, config.resolution, data_shape[0], map_layers=config.map_layers,
                         map_lr_mul=config.map_lr_mul, channel_base=config.channel_base,
                         channel_max=config.channel_max, conv_clamp=config.conv_clamp or None)

    @classmethod
    def build_discriminators(cls, config, data_shape):
        return {"D": Discriminator(config.resolution, data_shape[0], config.channel_base, config.channel_max,
                                   config.mbstd_group, conv_clamp=config.conv_clamp or None)}

    @classmethod
    def generation_options(cls, config, *, truncation=None, truncation_cutoff=None, noise=None) -> dict:
        """Keyword arguments of G for ``gankit sample``/``Model.generate``: psi in W, its layer
        cutoff, and the noise mode (random | const | none; const by default, so a seed gives one image)."""
        if truncation is not None and not math.isfinite(truncation):
            raise GankitError(f"truncation psi must be a finite number, got {truncation}")
        layers = num_ws(config)
        if truncation_cutoff is not None and not 1 <= truncation_cutoff <= layers:
            raise GankitError(f"truncation cutoff must be in 1..{layers} (the generator has {layers} style layers), "
                              f"got {truncation_cutoff}")
        if noise is not None and noise not in NOISE_MODES:
            raise GankitError(f"noise must be one of {', '.join(NOISE_MODES)}, got {noise!r}")
        return {"truncation": 1.0 if truncation is None else float(truncation), "truncation_cutoff": truncation_cutoff,
                "noise_mode": noise}

    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        self.aux["pl_mean"] = PathLengthMean()

    def build_optimizers(self):
        c = self.config
        return {"G": make_optimizer(c, self.nets["G"].parameters(), c.lr_g, c.g_reg_interval if c.pl_weight else 0),
                "D": make_optimizer(c, self.nets["D"].parameters(), c.lr_d, c.d_reg_interval if c.r1_gamma else 0)}

    def phases(self):
        c = self.config
        self.d_loss_fn, self.g_loss_fn = adversarial_losses(c.loss)  # used by GAN's D and G losses
        phases = [Phase("D", modules=("D",), optimizer="D", loss=self.discriminator_loss)]
        if c.r1_gamma > 0 and c.d_reg_interval > 0:
            phases.append(Phase("D_r1", modules=("D",), optimizer="D", loss=self.r1_loss,
                                interval=c.d_reg_interval, same_batch=True, fp32=True, double_backward=True))
        phases.append(Phase("G", modules=("G",), optimizer="G", loss=self.generator_loss, uses_data=False))
        if c.pl_weight > 0 and c.g_reg_interval > 0:
            phases.append(Phase("G_pl", modules=("G",), optimizer="G", loss=self.path_length_loss,
                                interval=c.g_reg_interval, uses_data=False, fp32=True, double_backward=True))
        return phases

    # ---- the generator in training: style mixing ----------------------------------------------
    def run_generator(self, n: int, device: torch.device, *, return_ws: bool = False):
        """G's images for fresh z, with a second z after a random crossover layer with probability
        ``style_mixing`` (StyleGAN §3.1)."""
        c = self.config
        z = torch.randn(n, c.nz, device=device)
        mix = {}
        if c.style_mixing > 0 and float(torch.rand([])) < c.style_mixing:
            mix = {"mix_z": torch.randn(n, c.nz, device=device),
                   "mix_cutoff": int(torch.randint(1, num_ws(c), []))}
        return self.train_nets[self.generator_key](z, return_ws=return_ws, **mix)

    def fake_batch(self, n, device, *, labels=None):
        return self.run_generator(n, device), None

    # ---- the lazy regularisers ----------------------------------------------------------------
    def r1_loss(self, batch: Batch):
        """gamma / 2 E||grad D(x)||^2 on the reals D just judged, times the interval (lazy R1)."""
        c = self.config
        penalty, zero = self.lazy_r1(batch)  # zero: the reference code's `real_logits * 0 + loss_Dr1`
        return penalty * (c.r1_gamma / 2 * c.d_reg_interval) + zero, {"loss/r1": penalty.detach()}

    def path_length_loss(self, batch: None):
        """(||J_w^T y|| - a)^2 on batch / pl_batch_shrink samples, times pl_weight and the interval."""
        c = self.config
        n = max(1, c.batch_size // c.pl_batch_shrink)
        images, ws = self.run_generator(n, self.device, return_ws=True)
        lengths = path_lengths(images, ws)
        mean = self.aux["pl_mean"].value
        # the reference keeps one running mean per GPU; averaged over the ranks, every rank holds
        # rank 0's, so a resumed torchrun job goes on exactly
        a = mean.lerp(mean_across_ranks(lengths.detach().mean()), c.pl_decay)
        mean.copy_(a)
        penalty = (lengths - a).square().mean()
        loss = penalty * (c.pl_weight * c.g_reg_interval) + 0 * images[:, :, 0, 0].sum()  # every parameter, for DDP
        return loss, {"loss/pl": penalty.detach(), "pl/mean": a.detach()}

