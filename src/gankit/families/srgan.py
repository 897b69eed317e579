"""SRGAN: Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network" (arXiv:1609.04802).

x4 super-resolution by a residual generator (:class:`gankit.nn.srgan.SRResNet`) trained in the
paper's two stages, one run going through both on its step count:

1. ``pretrain_steps`` of PSNR-oriented training, the pixel-wise MSE alone: the "SRResNet" of
   the paper (§3.2: 10^6 updates at 1e-4), the generator's initialisation "to avoid undesired
   local optima" in the second stage.
2. the adversarial stage: perceptual loss = content loss + 1e-3 x the generator's
   non-saturating loss (Eq. 3, 6), the discriminator trained with the logistic loss (Eq. 2);
   10^5 updates at 1e-4 and 10^5 at 1e-5 in the paper: the rate falls x0.1 at ``lr_drop``.

Content losses (§2.2.1): ``vgg54`` / ``vgg22``, the MSE of VGG19 features (scaled by 1/12.75 as
the paper), when VGG19 weights are on disk (``vgg_weights``); ``mse`` (the paper's SRGAN-MSE);
``dfeat``, offline: the pixel MSE plus the L1 distance of the discriminator's own features
(the "learned similarity" of Larsen et al. 2016, arXiv:1512.09300; pix2pixHD's feature
matching), which needs no pretrained network. ``auto`` takes vgg54 when weights are given,
else dfeat (docs/families/srgan.md compares them).

Data: HR patches (:func:`gankit.data.patches.load_patches`), each batch turned by one of the 8
flips/rotations; the LR input is the bicubic (antialiased, as MATLAB's ``imresize``) 1/scale
of the HR patch, rounded to 8 bits as a saved LR photo would be, or a real LR photo
(``--data-b``). Pixels are in [-1, 1] both sides (the paper scales LR to [0, 1]; a constant
affine map the first convolution absorbs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from gankit.config import TrainConfig
from gankit.data import Dataset
from gankit.errors import GankitError
from gankit.families.base import Batch, Phase
from gankit.families.translation import TranslationConfig, TranslationFamily
from gankit.losses import d_logistic, g_nonsaturating
from gankit.nn.optim import adam
from gankit.nn.resize import bicubic as bicubic_up
from gankit.nn.srgan import SRDiscriminator, SRResNet
from gankit.registry import register

STAGES = ("both", "pretrain", "gan")
CONTENT = ("auto", "mse", "dfeat", "vgg22", "vgg54")
VGG_SCALE = 1 / 12.75  # §3.2: "we also rescaled the VGG loss by a factor of 1/12.75"


@dataclass
class SRGANConfig(TranslationConfig):
    data: str = "pictures"  # a folder of photos (any sizes), a zip, one image, or the built-in pictures
    resolution: int = 96  # the HR crop (§3.1: 96x96); the LR input is resolution / scale
    scale: int = 4
    nf: int = 64
    n_blocks: int = 16  # B residual blocks
    batch_norm: bool = True  # in the generator's blocks (the paper); False: EDSR's finding (nn/srgan.py)
    global_skip: bool = False  # add the bicubic upscale to G's output: learn the residual (nn/srgan.py)
    ndf: int = 64
    dense: int = 1024
    # NHWC convolutions, same arithmetic: small preset 1.04-1.13x in fp32, 1.09-1.24x in bf16 on an
    # AMX CPU (bench/results/family_speed_channels_last.json)
    channels_last: bool = True
    stage: str = "both"  # both | pretrain (SRResNet only) | gan (the adversarial stage only, e.g. after --init)
    pretrain_steps: int = 1_000_000  # of `steps`, with stage=both
    content: str = "auto"  # auto | mse | dfeat | vgg22 | vgg54
    vgg_weights: str = ""  # torchvision's vgg19 ImageNet weights (.pth / .safetensors) for vgg22/vgg54
    adv_weight: float = 1e-3  # Eq. 3
    dfeat_weight: float = 1.0  # content=dfeat: weight of the discriminator-feature L1
    lr: float = 1e-4
    beta1: float = 0.9  # §3.2: Adam with beta1 = 0.9
    lr_drop: float = 0.5  # share of the adversarial stage after which the rate is x0.1
    patch_stride: int = 0  # 0 = half a crop
    max_patches: int = 20_000
    flips: bool = True  # random flips and 90-degree turns of each patch

    PRESETS: ClassVar = {
        "tiny": dict(resolution=32, nf=8, n_blocks=2, ndf=8, dense=16, batch_size=4, steps=12, pretrain_steps=6,
                     log_every=3, snapshot_every=6, checkpoint_every=6, n_snapshot=4, max_patches=256),
        # a CPU in about an hour: 8 blocks without BN, 64 px crops, a discriminator of half the
        # width (at full width its steps cost 3x the generator's: 6.7 s against 2 s on one core),
        # the bicubic global skip (250 MSE steps: 30.50 dB against 28.01 without, bicubic 30.02)
        "small": dict(resolution=64, nf=64, n_blocks=8, batch_norm=False, global_skip=True, ndf=32, dense=512,
                      batch_size=16, steps=2500, pretrain_steps=2000, lr=2e-4, log_every=25, snapshot_every=250,
                      checkpoint_every=250, n_snapshot=8),
        "paper": dict(resolution=96, batch_size=16, steps=1_200_000, pretrain_steps=1_000_000, snapshot_every=5000,
                      checkpoint_every=10_000),
    }

    def validate(self) -> None:
        TrainConfig.validate(self)
        if self.scale < 2 or self.scale & (self.scale - 1):
            raise GankitError(f"scale must be 2, 4 or 8 (a power of two), got {self.scale}")
        if self.resolution % 16 or self.resolution % self.scale:
            raise GankitError(f"resolution (the HR crop) must be a multiple of 16 and of the scale, got {self.resolution}")
        if self.stage not in STAGES:
            raise GankitError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.content not in CONTENT:
            raise GankitError(f"content must be one of {', '.join(CONTENT)}, got {self.content!r}")
        if self.content in ("vgg22", "vgg54") and not self.vgg_weights:
            raise GankitError(f"content={self.content} needs VGG19 weights on disk: --set vgg_weights=PATH "
                              f"(torchvision's vgg19-dcbb9e9d.pth); without them use content=dfeat or mse")
        if self.decay_from != 1:
            raise GankitError("srgan sets its own rates (x0.1 at lr_drop of the adversarial stage): drop decay_from")
        if not 0 < self.lr_drop <= 1 or self.adv_weight < 0 or self.dfeat_weight < 0 or self.pretrain_steps < 0:
            raise GankitError("lr_drop must be in (0, 1], adv_weight, dfeat_weight and pretrain_steps >= 0")

    def content_loss(self) -> str:
        """The content loss this run uses: ``auto`` resolved."""
        if self.content != "auto":
            return self.content
        return "vgg54" if self.vgg_weights else "dfeat"


@register
class SRGAN(TranslationFamily):
    name = "srgan"
    description = "x4 super-resolution: SRResNet + VGG-style D, MSE pretraining then adversarial (Ledig 2017)"
    paper = "arXiv:1609.04802"
    Config = SRGANConfig
    data_kinds = ("image", "paired")
    # --init (e.g. the adversarial stage from an SRResNet run) keeps both nets' shapes
    apply_command = "upscale"
    architecture_keys = ("scale", "nf", "n_blocks", "batch_norm", "global_skip", "channels", "resolution", "ndf", "dense")

    # ---- data ---------------------------------------------------------------------------------
    @classmethod
    def load_data(cls, config: SRGANConfig) -> Dataset:
        from gankit.data.patches import load_patches

        dataset = load_patches(config.data, crop=config.resolution, scale=config.scale, channels=config.channels or 3,
                               stride=config.patch_stride, data_b=config.data_b or None,
                               max_patches=config.max_patches, max_images=config.max_images)
        config.channels = config.channels_b = dataset.shape[0]
        config.num_classes = 0
        return dataset

    @classmethod
    def io_channels(cls, config):
        return config.channels, config.channels

    @classmethod
    def sample_shape(cls, config):
        return (config.channels, config.resolution, config.resolution)

    @classmethod
    def next_commands(cls, run) -> list[str]:
        return [f"gankit upscale {run} --input IMAGE_OR_FOLDER --out {run}/upscaled"]

    @classmethod
    def training_plan(cls, config: SRGANConfig) -> list[str]:
        c = config
        low = c.resolution // c.scale
        stages = {"both": f"{c.pretrain_steps:,} MSE pretraining steps, then {max(0, c.steps - c.pretrain_steps):,} "
                          f"adversarial ones (content {c.content_loss()})",
                  "pretrain": "MSE only (SRResNet)", "gan": f"adversarial only (content {c.content_loss()})"}[c.stage]
        return [f"x{c.scale}: {low}x{low} -> {c.resolution}x{c.resolution} crops; {stages}"]

    # ---- networks -----------------------------------------------------------------------------
    @classmethod
    def build_generator(cls, config, data_shape):
        return SRResNet(data_shape[0], nf=config.nf, n_blocks=config.n_blocks, scale=config.scale,
                        batch_norm=config.batch_norm, global_skip=config.global_skip)

    @classmethod
    def build_discriminators(cls, config, data_shape):
        return {"D": SRDiscriminator(data_shape[0], crop=config.resolution, ndf=config.ndf, dense=config.dense)}

    def __init__(self, config: SRGANConfig, data_shape):
        super().__init__(config, data_shape)
        self.content = config.content_loss()
        self.vgg = None
        if self.content.startswith("vgg"):
            from gankit.nn.vgg import VGGFeatures

            self.vgg = VGGFeatures(self.content, config.vgg_weights)  # fixed: not in checkpoints
        self._pair: tuple[Batch, torch.Tensor, torch.Tensor] | None = None

    def build_optimizers(self):
        c = self.config
        betas = (c.beta1, 0.999)
        return {"G": adam(self.nets["G"].parameters(), c.lr, betas), "D": adam(self.nets["D"].parameters(), c.lr, betas)}

    # ---- the schedule -------------------------------------------------------------------------
    def adversarial_at(self, step: int) -> bool:
        c = self.config
        return c.stage == "gan" or (c.stage == "both" and step >= c.pretrain_steps)

    def begin_step(self, step: int) -> None:
        """The rate of ``step``: lr, then lr x 0.1 after ``lr_drop`` of the adversarial stage."""
        super().begin_step(step)
        self._pair = None
        c = self.config
        start = 0 if c.stage == "gan" else c.pretrain_steps if c.stage == "both" else c.steps
        factor = 0.1 if step >= start + c.lr_drop * max(0, c.steps - start) and self.adversarial_at(step) else 1.0
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = c.lr * factor * self.lr_scale

    def phases(self):
        return [Phase("D", ("D",), "D", self.discriminator_step, active=self.adversarial_at),
                Phase("G", ("G",), "G", self.generator_step, same_batch=True)]

    # ---- the losses ---------------------------------------------------------------------------
    def low_high(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR input, HR target) of a batch, the same for every phase of a step."""
        if self._pair is not None and self._pair[0] is batch:
            return self._pair[1], self._pair[2]
        hr, lr = batch.x, batch.x_b
        if self.config.flips:
            hr, lr = random_dihedral(hr, lr)
        if lr is None:
            lr = downsample(hr, self.config.scale)
        self._pair = (batch, lr, hr)
        return lr, hr

    def discriminator_step(self, batch: Batch):
        lr, hr = self.low_high(batch)
        with torch.no_grad():
            sr = self.train_nets["G"](lr)
        D = self.train_nets["D"]
        loss = d_logistic(D(hr), D(sr))
        return loss, {"loss/D": loss.detach()}

    def generator_step(self, batch: Batch):
        lr, hr = self.low_high(batch)
        sr = self.train_nets["G"](lr)
        mse = F.mse_loss(sr, hr)
        if not self.adversarial_at(self.step_under_way):
            return mse, {"loss/mse": mse.detach()}
        logs = {"loss/mse": mse.detach()}
        if self.content == "dfeat":  # D is frozen in this phase: its plain module gives the features
            D = self.nets["D"]
            with torch.no_grad():
                real_features = discriminator_features(D, hr)
            fake_features = discriminator_features(D, sr)
            logits = D.classifier(fake_features[-1])
            match = sum(F.l1_loss(f, r) for f, r in zip(fake_features, real_features)) / len(real_features)
            content = mse + self.config.dfeat_weight * match
            logs["loss/dfeat"] = match.detach()
        else:
            logits = self.train_nets["D"](sr)
            content = mse if self.content == "mse" else self.vgg_loss(sr, hr)
        adv = g_nonsaturating(logits.flatten())
        logs.update({"loss/content": content.detach(), "loss/G": adv.detach()})
        return content + self.config.adv_weight * adv, logs

    def vgg_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """Eq. 5: the MSE of VGG19 features, each scaled by 1/12.75."""
        vgg = self.vgg.to(sr.device)
        with torch.no_grad():
            target = vgg(hr) * VGG_SCALE
        return F.mse_loss(vgg(sr) * VGG_SCALE, target)

    # ---- using it -----------------------------------------------------------------------------
    @classmethod
    def translate(cls, G: nn.Module, config, x: torch.Tensor, *, direction=None, attrs=None) -> torch.Tensor:
        cls.refuse_attrs(attrs)
        return G(x).clamp(-1, 1)

    @classmethod
    def input_size(cls, config):
        return None  # fully convolutional: any size (Model.translate runs it whole; upscale tiles)

    @classmethod
    def snapshot_columns(cls, G, config, batch: Batch):
        """Bicubic upsampling of the LR input, the generator's output, the HR patch."""
        hr = batch.x
        lr = batch.x_b if batch.x_b is not None else downsample(hr, config.scale)
        return [bicubic_up(lr, hr.shape[-2:]), G(lr).clamp(-1, 1), hr]


def downsample(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The LR image of ``hr``: bicubic with antialiasing (as MATLAB's ``imresize``, the SR
    literature's degradation), rounded to 8 bits."""
    lr = F.interpolate(hr.float(), scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    return ((lr.clamp(-1, 1) + 1) * 127.5).round().div(127.5).sub(1).to(hr.dtype)


def random_dihedral(hr: torch.Tensor, lr: torch.Tensor | None = None):
    """Each item turned by one of the 8 flips/rotations of the square (EDSR's augmentation),
    the same for its LR partner; drawn from torch's global generator (seeded per step)."""
    n = hr.shape[0]
    draws = torch.rand(n, 3, device=hr.device) < 0.5

    def apply(x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        pick = lambda k: draws[:, k].view(n, 1, 1, 1)  # noqa: E731
        x = torch.where(pick(0), x.flip(3), x)
        x = torch.where(pick(1), x.flip(2), x)
        return torch.where(pick(2), x.transpose(2, 3), x)

    return apply(hr), apply(lr)


def discriminator_features(D: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The activations after each LeakyReLU of D's convolutional part (the last one feeds its
    classifier): the feature space of content=dfeat."""
    out = []
    for layer in D.features:
        x = layer(x)
        if isinstance(layer, nn.LeakyReLU):
            out.append(x)
    return out
