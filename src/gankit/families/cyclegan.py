"""CycleGAN: Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks" (arXiv:1703.10593).

Two generators, G: A -> B and F: B -> A, and two discriminators, D_B on domain B and D_A on
domain A, learn from unpaired sets. Besides fooling its discriminator, each translation must be
undone by the other (cycle consistency, Eq. 2: ||F(G(a)) - a||_1 + ||G(F(b)) - b||_1, lambda 10),
and a generator fed an image of its own output domain should leave it alone (identity loss,
§5.2, weight 0.5 lambda; only when both domains have the same channels). Least-squares GAN loss
(§4), D judges 70x70 patches, D is updated from a pool of the 50 latest fakes (Shrivastava et
al. 2017) so it does not oscillate, Adam(2e-4, 0.5), and the learning rate decays linearly to
zero over the second half of training.

:class:`CycleFamily` holds the two-way machinery that DiscoGAN (:mod:`gankit.families.discogan`)
shares: one step = the generators' step (both directions, one optimizer), then the
discriminators' step on the fakes it made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from gankit.errors import GankitError
from gankit.families.base import Batch, Phase
from gankit.families.translation import TranslationConfig, TranslationFamily
from gankit.losses import adversarial_losses
from gankit.nn.translation import ImagePool, PatchDiscriminator, ResnetGenerator, init_weights
from gankit.registry import register


class TwoWayGenerator(nn.Module):
    """The two translators of a two-way family as one module, so the engine saves, averages and
    exports them together: ``ab`` maps domain A to B, ``ba`` maps B to A."""

    def __init__(self, ab: nn.Module, ba: nn.Module):
        super().__init__()
        self.ab, self.ba = ab, ba

    def forward(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        return self.ab(x) if direction == "AtoB" else self.ba(x)


@dataclass
class CycleConfig(TranslationConfig):
    """Options of the two-way (unpaired) families."""

    ngf: int = 64
    ndf: int = 64
    loss: str = "lsgan"  # §4: least squares for stable training
    lambda_cycle: float = 10.0  # Eq. 3
    lambda_identity: float = 0.5  # times lambda_cycle (§5.2); 0 = off
    cycle_distance: str = "l1"  # l1 (CycleGAN) | mse (DiscoGAN's authors)
    pool_size: int = 50  # past fakes D learns from; 0 = only the newest
    decay_from: float = 0.5  # §4: constant lr for the first half, then linear to 0

    def validate(self) -> None:
        super().validate()
        adversarial_losses(self.loss)
        if self.cycle_distance not in ("l1", "mse"):
            raise GankitError(f"cycle_distance must be l1 or mse, got {self.cycle_distance!r}")
        if self.lambda_cycle < 0 or self.lambda_identity < 0 or self.pool_size < 0:
            raise GankitError("lambda_cycle, lambda_identity and pool_size must be >= 0")


class CycleFamily(TranslationFamily):
    """Two generators (A->B, B->A) and two discriminators (D_A on A, D_B on B), unpaired data."""

    paired_data: ClassVar[bool] = False
    data_kinds: ClassVar[tuple[str, ...]] = ("unpaired",)
    Config: ClassVar = CycleConfig

    @classmethod
    def build_translator(cls, config, cin: int, cout: int) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def build_domain_discriminator(cls, config, channels: int) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def build_generator(cls, config, data_shape):
        a, b = config.channels, config.channels_b or config.channels
        G = TwoWayGenerator(cls.build_translator(config, a, b), cls.build_translator(config, b, a))
        init_weights(G)
        return G

    @classmethod
    def build_discriminators(cls, config, data_shape):
        a, b = config.channels, config.channels_b or config.channels
        nets = {"D_A": cls.build_domain_discriminator(config, a), "D_B": cls.build_domain_discriminator(config, b)}
        for net in nets.values():
            init_weights(net)
        return nets

    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        self.d_loss, self.g_loss = adversarial_losses(config.loss)
        self.aux = {"pool_A": ImagePool(config.pool_size), "pool_B": ImagePool(config.pool_size)}
        self._fakes: tuple[torch.Tensor, torch.Tensor] | None = None  # G's step's fakes, for D's step

    def phases(self):
        return [Phase("G", ("G",), "G", self.generator_step),
                Phase("D", ("D_A", "D_B"), "D", self.discriminator_step, same_batch=True)]

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(x, y) if self.config.cycle_distance == "l1" else F.mse_loss(x, y)

    def generator_adversarial(self, D: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """A generator's adversarial loss against D on its fakes (``real``: the target domain's batch,
        for losses that compare with it)."""
        return self.g_loss(D(fake))

    def cycle_weight(self) -> float:
        """The weight of the reconstruction (cycle) losses at this step."""
        return self.config.lambda_cycle

    def generator_step(self, batch: Batch):
        c, G = self.config, self.train_nets["G"]
        real_a, real_b = batch.x, batch.x_b
        # through G's forward (not G.ab): under torchrun G is DDP-wrapped, and only its forward
        # hooks the gradients into the all-reduce
        fake_b, fake_a = G(real_a, "AtoB"), G(real_b, "BtoA")
        adv_b = self.generator_adversarial(self.train_nets["D_B"], fake_b, real_b)
        adv_a = self.generator_adversarial(self.train_nets["D_A"], fake_a, real_a)
        cycle_a = self.distance(G(fake_b, "BtoA"), real_a)
        cycle_b = self.distance(G(fake_a, "AtoB"), real_b)
        loss = adv_a + adv_b + self.cycle_weight() * (cycle_a + cycle_b)
        logs = {"loss/G_AB": adv_b.detach(), "loss/G_BA": adv_a.detach(), "loss/cycle": (cycle_a + cycle_b).detach()}
        if c.lambda_identity > 0 and real_a.shape[1] == real_b.shape[1]:
            identity = self.distance(G(real_b, "AtoB"), real_b) + self.distance(G(real_a, "BtoA"), real_a)
            loss = loss + c.lambda_identity * c.lambda_cycle * identity
            logs["loss/identity"] = identity.detach()
        self._fakes = (fake_a.detach(), fake_b.detach())
        return loss, logs

    def discriminator_step(self, batch: Batch):
        fake_a, fake_b = self._fakes
        rng = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))  # from the step's seeded RNG
        fake_a = self.aux["pool_A"].query(fake_a, rng)
        fake_b = self.aux["pool_B"].query(fake_b, rng)
        D_A, D_B = self.train_nets["D_A"], self.train_nets["D_B"]
        loss_a = self.d_loss(D_A(batch.x), D_A(fake_a))
        loss_b = self.d_loss(D_B(batch.x_b), D_B(fake_b))
        return loss_a + loss_b, {"loss/D_A": loss_a.detach(), "loss/D_B": loss_b.detach()}

    # ---- using it ----------------------------------------------------------------------------
    @classmethod
    def input_channels(cls, config, direction: str | None = None) -> int:
        a, b = config.channels, config.channels_b or config.channels
        return a if (direction or config.direction) == "AtoB" else b

    @classmethod
    def translate(cls, G, config, x, *, direction=None, attrs=None):
        cls.refuse_attrs(attrs)
        return G(x, direction or config.direction)

    @classmethod
    def snapshot_columns(cls, G, config, batch):
        """A, G(A), F(G(A)), then B, F(B), G(F(B)): both translations and both cycles."""
        fake_b, fake_a = G.ab(batch.x), G.ba(batch.x_b)
        return [batch.x, fake_b, G.ba(fake_b), batch.x_b, fake_a, G.ab(fake_a)]


@dataclass
class CycleGANConfig(CycleConfig):
    n_blocks: int = 9  # residual blocks: 9 at 256 px, 6 at 128 px (App. 7.2)
    n_layers_d: int = 3  # 70x70 PatchGAN
    norm: str = "instance"

    PRESETS: ClassVar = {
        "tiny": dict(resolution=16, ngf=8, ndf=8, n_blocks=1, n_layers_d=2, batch_size=4, steps=20, log_every=5,
                     snapshot_every=10, checkpoint_every=10, n_snapshot=4, pool_size=8),
        "small": dict(resolution=32, ngf=16, ndf=32, n_blocks=3, n_layers_d=2, batch_size=8, steps=3000,
                      log_every=25, snapshot_every=250, checkpoint_every=500, n_snapshot=12),
        # the paper: 256 px, batch 1, 100 epochs at lr 2e-4 then 100 decaying (horse2zebra: ~1,000 images)
        "paper": dict(resolution=256, batch_size=1, steps=200_000, snapshot_every=2000, checkpoint_every=5000),
    }


@register
class CycleGAN(CycleFamily):
    name = "cyclegan"
    description = "unpaired translation: two ResNet generators, cycle + identity losses (Zhu 2017)"
    paper = "arXiv:1703.10593"
    Config = CycleGANConfig

    @classmethod
    def build_translator(cls, config, cin, cout):
        return ResnetGenerator(cin, cout, ngf=config.ngf, n_blocks=config.n_blocks, norm=config.norm)

    @classmethod
    def build_domain_discriminator(cls, config, channels):
        return PatchDiscriminator(channels, ndf=config.ndf, n_layers=config.n_layers_d, norm=config.norm)
