"""ProGAN: Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs for Improved Quality,
Stability, and Variation" (arXiv:1710.10196).

Training starts at 4x4 and doubles the resolution stage by stage (§3): each new block of G and D
fades in while alpha ramps linearly from 0 to 1, then the grown networks stabilise. Stage and
alpha are pure functions of the images shown (``step * batch_size``, :func:`progress`), set
by :meth:`ProGAN.begin_step` in both networks' buffers, so a run resumed mid-fade equals an
uninterrupted one. The game is WGAN-GP (Gulrajani et al. 2017, lambda 10) plus the drift term
eps_drift E[D(x)^2] on reals (App. A.1, eps_drift = 0.001), with n_critic 1 and
Adam(0.001, 0, 0.99, eps 1e-8); the networks are in :mod:`gankit.nn.progan`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch

from gankit.errors import GankitError
from gankit.families.base import Batch
from gankit.families.gan import GAN, AdversarialConfig
from gankit.nn.progan import ProDiscriminator, ProGenerator, fade_reals, num_stages
from gankit.registry import register


@dataclass
class ProGANConfig(AdversarialConfig):
    nz: int = 512  # 512-D latents, normalised onto the hypersphere by G's first pixel norm (App. A.1)
    lr_g: float = 0.001
    lr_d: float = 0.001
    beta1: float = 0.0  # Adam(0.001, beta1 = 0, beta2 = 0.99, eps = 1e-8), App. A.1
    beta2: float = 0.99
    loss: str = "wasserstein"
    reg: str = "gp"
    reg_weight: float = 10.0  # lambda
    drift: float = 0.001  # eps_drift: keeps D's output near 0 (App. A.1, "fourth term")
    fmap_base: int = 16384  # channels at resolution r: min(fmap_max, fmap_base / r)
    fmap_max: int = 512
    mbstd_group: int = 4  # minibatch stddev group (the reference default; 16 = the whole minibatch in `paper`)
    stage_images: int = 800_000  # real images of each stabilise phase (the 4x4 stage is one too)
    # NHWC convolutions, same arithmetic: small preset 1.19-1.24x in fp32, 1.14-1.24x in bf16 on an
    # AMX CPU (bench/results/family_speed_channels_last.json)
    channels_last: bool = True
    fade_images: int = 800_000  # real images of each fade-in (alpha 0 -> 1)
    # Reset Adam's moments when a phase begins (the reference code's reset_opt_for_new_lod).
    reset_optimizers: bool = True

    PRESETS: ClassVar = {
        # 16 px: 3 stages; with batch 8, each phase is 5 steps: stabilise 4x4 (steps 0-4), fade
        # in 8x8 (5-9), stabilise (10-14), fade in 16x16 (15-19), stabilise (20-)
        "tiny": dict(resolution=16, nz=16, fmap_base=128, fmap_max=16, batch_size=8, stage_images=40,
                     fade_images=40, steps=24, log_every=5, snapshot_every=10, checkpoint_every=10,
                     n_snapshot=16),
        # 32 px digits or faces on a CPU: 32, 32, 16, 8 maps at 4, 8, 16, 32 px; 500 steps of 32 per
        # phase, so the 32x32 stage fades in at steps 2,500-2,999 and stabilises to 4,000
        "small": dict(resolution=32, nz=128, fmap_base=256, fmap_max=32, batch_size=32, stage_images=16_000,
                      fade_images=16_000, steps=4000, log_every=25, snapshot_every=250, checkpoint_every=500,
                      ema_decay=0.995),
        # CelebA-HQ at 1024 (App. A.1, Table 2; the reference config.py's preset-v1-1gpu): 512 maps
        # up to 32x32, halving after; 800k images per fade and per stabilise phase, 19M images in
        # all (1,187,500 steps of 16). The paper shrinks the minibatch above 128 px (14, 6, 3)
        # to fit in memory; gankit keeps one batch size per run. Mirror augmentation as the reference.
        "paper": dict(resolution=1024, nz=512, fmap_base=16384, fmap_max=512, batch_size=16, mbstd_group=16,
                      stage_images=800_000, fade_images=800_000, steps=1_187_500, hflip=True),
    }

    def validate(self) -> None:
        super().validate()
        r = self.resolution
        if not (isinstance(r, int) and r >= 4 and r & (r - 1) == 0):
            raise GankitError(f"progan grows from 4x4 by doubling: resolution must be a power of two >= 4, got {r}")
        if self.stage_images < 1 or self.fade_images < 1:
            raise GankitError(f"stage_images and fade_images must be >= 1, "
                              f"got {self.stage_images} and {self.fade_images}")
        if self.fmap_base < 1 or self.fmap_max < 1 or self.mbstd_group < 1 or self.drift < 0:
            raise GankitError("fmap_base, fmap_max and mbstd_group must be >= 1, drift >= 0")
        if self.spectral_norm:
            raise GankitError("progan's layers use equalized learning rate; spectral_norm does not apply to them")
        if self.reg_interval > 1:
            raise GankitError("progan's D judges reals faded to the growing stage; use reg_interval=1")


def progress(images: int, stages: int, stage_images: int, fade_images: int) -> tuple[int, float]:
    """``(stage, alpha)`` once ``images`` real images have been shown (§3, App. A.1).

    Stage 0 (4x4) lasts ``stage_images``; each later stage fades in over ``fade_images``
    (alpha = the fraction of its fade done, 0 at its first image) and then stabilises for
    ``stage_images`` (alpha = 1); the last of ``stages`` stays until the end. The same schedule
    as the reference code's ``TrainingSchedule``, whose level of detail is lod = stages - stage - alpha."""
    if images < stage_images:
        return 0, 1.0
    k, into = divmod(images - stage_images, fade_images + stage_images)
    if k + 1 >= stages:
        return stages - 1, 1.0
    return k + 1, (into / fade_images if into < fade_images else 1.0)


def phase_index(stage: int, alpha: float) -> int:
    """0 for the 4x4 stage, then 2k - 1 while stage k fades in and 2k while it stabilises."""
    return 2 * stage - (alpha < 1)


@register
class ProGAN(GAN):
    name = "progan"
    description = "Progressive growing (Karras et al. 2018): fade-ins from 4x4, equalized lr, pixel norm, WGAN-GP"
    paper = "arXiv:1710.10196"
    Config = ProGANConfig
    data_kinds = ("image",)

    @classmethod
    def build_generator(cls, config, data_shape):
        return ProGenerator(config.nz, data_shape[0], data_shape[-1], config.fmap_base, config.fmap_max)

    @classmethod
    def build_discriminators(cls, config, data_shape):
        return {"D": ProDiscriminator(data_shape[0], data_shape[-1], config.fmap_base, config.fmap_max,
                                      config.mbstd_group)}

    # The blocks of stages not reached yet (and a stabilised stage's old toRGB) get no gradient.
    unused_parameters = True
    linear_output = True  # toRGB is linear (Table 2): samples are clamped, D sees the raw output

    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        self.stage, self.alpha = 0, 1.0

    def schedule(self, step: int) -> tuple[int, float]:
        """(stage, alpha) of training step ``step`` (0-based): :func:`progress` of the images shown before it."""
        c = self.config
        return progress(step * c.batch_size, num_stages(c.resolution), c.stage_images, c.fade_images)

    def ema_restart(self, steps_done: int) -> int:
        """The first step of the fade-in of the stage being trained (0 at 4x4): the EMA's warm-up
        restarts there. A new block starts from its random init and moves fast during its fade;
        an EMA that kept its full decay would mix in those initial weights for about a
        half-life (138 steps at 0.995), and with the short phases of a CPU budget (250 steps)
        the EMA generator drew flat magenta squares right after a fade ended, while the
        generator itself drew faces. The reference code's fades (800k images, half-life
        ~11k images) are long enough not to need this."""
        c = self.config
        stage, _ = self.schedule(max(steps_done - 1, 0))
        if stage == 0:
            return 0
        images = c.stage_images + (stage - 1) * (c.fade_images + c.stage_images)
        return -(-images // c.batch_size)  # the first step whose images reach the fade

    def begin_step(self, step: int) -> None:
        """Set stage and alpha in G and D (the EMA copy follows G's buffers); at the first step
        of a fade or a stabilise phase, reset the optimizers' moments when configured."""
        super().begin_step(step)
        self.stage, self.alpha = self.schedule(step)
        for net in self.nets.values():
            net.set_progress(self.stage, self.alpha)
        if self.config.reset_optimizers and step > 0 and phase_index(*self.schedule(step - 1)) != phase_index(
                self.stage, self.alpha):
            for opt in self.optimizers.values():
                opt.state.clear()

    def discriminator_loss(self, batch: Batch):
        """WGAN-GP on reals shown at the current stage (:func:`fade_reals`) plus
        drift * E[D(x)^2] (App. A.1), logged as ``loss/drift``."""
        batch = dataclasses.replace(batch, x=fade_reals(batch.x, self.stage, self.alpha))
        loss, logs = super().discriminator_loss(batch)
        logs["loss/drift"] = self._drift.detach()
        logs["grow/stage"] = torch.tensor(float(self.stage))
        logs["grow/alpha"] = torch.tensor(self.alpha)
        return loss, logs

    def phases(self):
        phases = super().phases()
        d_loss = self.d_loss_fn

        def with_drift(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
            self._drift = real_logits.float().square().mean()
            return d_loss(real_logits, fake_logits) + self.config.drift * self._drift

        self.d_loss_fn = with_drift
        return phases
