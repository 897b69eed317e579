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
from gankit.data.augment import make_augment
from gankit.errors import GankitError
from gankit.losses import (LOSSES, PROBABILISTIC, REGULARIZERS, adversarial_losses, clip_weights, most_realistic,
                           regularizer)
from gankit.nn.optim import adam
from gankit.nn.ranks import distributed
from gankit.nn.spectral import apply_spectral_norm
from gankit.registry import register


@dataclass
class AdversarialConfig(TrainConfig):
    """Options of the two-player game shared by every noise-to-image family."""

    nz: int = 100  # latent size
    lr_g: float = 2e-4  # Adam(2e-4, beta1=0.5): Radford et al. 2015, §4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    optimizer: str = "adam"  # adam | rmsprop (WGAN, Arjovsky 2017)
    # nonsaturating | minimax (Goodfellow 2014) | lsgan (Mao 2017) | wasserstein (Arjovsky 2017)
    # | hinge (Lim & Ye 2017): see gankit.losses
    loss: str = "nonsaturating"
    reg: str = "none"  # none | gp (Gulrajani 2017) | r1 | r2 (Mescheder 2018), on D
    reg_weight: float = 10.0  # lambda of gp; gamma of r1/r2 (the penalty is gamma/2 E||grad D||^2)
    # Lazy regularisation (Karras et al. 2020, StyleGAN2 App. B): R1 in a D step of its own every
    # reg_interval steps, weighted by the interval, with Adam's lr and betas corrected; 1 = R1 in
    # every D step. 16 makes R1 nearly free (DCGAN on Stacked MNIST: docs/benchmarks.md)
    reg_interval: int = 1
    clip: float = 0.0  # clip D's weights to [-clip, clip] after each D step (WGAN); 0 = off
    d_steps: int = 1  # D steps per G step (WGAN's n_critic)
    # G steps per D step, each on fresh noise (with reuse_fakes, the first on D's fakes): 2 in the
    # DCGAN-tensorflow code that PacGAN's Stacked-MNIST runs use ("so that d_loss does not go to
    # zero"; it did not help there: docs/benchmarks.md); 1 is Goodfellow's Algorithm 1
    g_steps: int = 1
    # G's step reuses the fakes D's step was shown, with their graph: one G forward per step
    # instead of two (what the DCGAN reference code does; Goodfellow's Algorithm 1 draws fresh
    # noise). Needs d_steps=1; with several processes G's step draws fresh fakes (DDP cannot
    # all-reduce through a forward made outside its phase).
    reuse_fakes: bool = False
    spectral_norm: bool = False  # spectral normalisation of every D layer (Miyato 2018)
    pack: int = 1  # PacGAN (Lin et al. 2018): D judges `pack` samples at once; 1 = off
    # Top-k training (Sinha et al. 2020): G learns only from the fakes D scores most realistic, a
    # fraction falling by `topk_gamma` per epoch from 1 to this floor (the paper's 0.5); 1 = off
    topk: float = 1.0
    topk_gamma: float = 0.99
    # Differentiable augmentation of everything D sees, for small datasets:
    # none | diffaugment (Zhao et al. 2020) | ada (Karras et al. 2020)
    augment: str = "none"
    augment_policy: str = "color,translation,cutout"  # DiffAugment's ops
    ada_target: float = 0.6  # ADA's target for r_t = E[sign(D(real))]
    ada_interval: int = 4  # D steps between updates of p
    ada_speed: int = 100_000  # images over which p can move from 0 to 1 (500k in the paper)

    def validate(self) -> None:
        super().validate()
        if self.loss not in LOSSES:
            raise GankitError(f"unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")
        if self.reg not in REGULARIZERS:
            raise GankitError(f"unknown reg {self.reg!r}; choose from {', '.join(REGULARIZERS)}")
        if self.optimizer not in OPTIMIZERS:
            raise GankitError(f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
        if min(self.d_steps, self.g_steps, self.pack, self.reg_interval) < 1 or self.clip < 0 or self.reg_weight < 0:
            raise GankitError("d_steps, g_steps, pack and reg_interval must be >= 1; clip and reg_weight >= 0")
        if self.reg_interval > 1 and self.reg in ("gp", "r2"):  # with reg=none there is nothing to make lazy
            raise GankitError(f"reg_interval > 1 (lazy regularisation) is for reg=r1, got reg={self.reg}")
        if not (0 < self.topk <= 1 and 0 < self.topk_gamma <= 1):
            raise GankitError(f"topk and topk_gamma must be in (0, 1], got {self.topk} and {self.topk_gamma}")
        if self.reuse_fakes and self.d_steps != 1:
            raise GankitError(f"reuse_fakes needs d_steps=1 (got {self.d_steps})")
        if self.batch_size % self.pack:
            raise GankitError(f"batch_size ({self.batch_size}) must be a multiple of pack ({self.pack})")
        make_augment(self.augment, policy=self.augment_policy)  # raises on a bad name or policy
        if not 0 < self.ada_target < 1:  # r_t = E[sign(D(real))] lies in [-1, 1]; ADA uses 0.6
            raise GankitError(f"ada_target must be in (0, 1), got {self.ada_target}")


OPTIMIZERS = ("adam", "rmsprop")


def make_optimizer(config: AdversarialConfig, params, lr: float, lazy_interval: int = 0) -> torch.optim.Optimizer:
    """Adam(lr, (beta1, beta2)) or RMSprop(lr), as the config says. With ``lazy_interval`` > 0, a
    phase adds a regulariser every that many steps: StyleGAN2's correction (Karras et al. 2020,
    App. B) scales lr and the betas by r = interval / (interval + 1) (beta ** r), as interval + 1
    updates are made where interval were planned."""
    r = lazy_interval / (lazy_interval + 1) if lazy_interval > 0 else 1.0
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr * r)
    return adam(params, lr * r, (config.beta1 ** r, config.beta2 ** r))


def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """PacGAN packing (Lin et al. 2018, §3): m consecutive samples become one input with m times
    the channels (images) or features (points): (N, C, ...) -> (N/m, mC, ...)."""
    if m == 1:
        return x
    return x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])


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
    # The `toy` preset averages once its rates decay, where G settles (ring8, 14,000 steps: 97%
    # of EMA samples high quality, 43% of the raw generator's).
    ema: bool = False

    PRESETS: ClassVar = {
        "tiny": dict(resolution=8, nz=8, g_hidden=32, d_hidden=16, maxout_pieces=2, batch_size=8, steps=20,
                     log_every=5, snapshot_every=10, checkpoint_every=10, n_snapshot=16),
        "small": dict(resolution=28, nz=64, g_hidden=512, d_hidden=256, maxout_pieces=2, dropout=0.3,
                      batch_size=64, steps=3000, log_every=25, snapshot_every=200, ema_decay=0.995),
        "paper": dict(resolution=28, batch_size=100, steps=50_000),
        # the 2-D mixtures (the mode-coverage benchmark's protocol, docs/benchmarks.md): PacGAN's
        # network shapes (Lin et al. 2018, App. D: 2-D noise, a ReLU G, a maxout-5 D of 3 layers)
        # at width 128 instead of 400/200, G one layer deeper, Adam(5e-4); PacGAN2 packing, the
        # rates falling linearly to 0 over the second half and an EMA of G. On grid25 this took
        # 15-17 of 25 modes (no packing) to 25 of 25 with reverse KL 0.008 (bench/results/modes_*)
        "toy": dict(nz=2, g_hidden=128, g_layers=4, d_hidden=128, d_layers=3, maxout_pieces=5, dropout=0.0,
                    lr_g=5e-4, lr_d=5e-4, batch_size=128, pack=2, decay_from=0.5, ema=True, ema_decay=0.999,
                    steps=40_000, log_every=100, snapshot_every=2000, checkpoint_every=5000),
    }


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013): the max over ``pieces`` affine maps."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # max(dim), not amax: the same values, and a backward that scatters the gradient to the
        # winning piece by index where amax's compares every piece with the max and converts that
        # mask to floats (fwd + bwd of a 64x640 maxout: 265-350 against 451 us on one core)
        return self.linear(x).view(x.shape[0], self.out_features, self.pieces).max(dim=2).values


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
    """data -> logits (N,): hidden layers of maxout units (``pieces`` >= 2, Goodfellow 2014 §5) or,
    with ``pieces=0``, of ReLU units (the critics of the WGAN papers' toy experiments); dropout
    after each when ``dropout`` > 0; a linear output, no sigmoid."""

    def __init__(self, shape: tuple[int, ...], hidden: int, layers: int, pieces: int = 0, dropout: float = 0.0):
        super().__init__()
        dims = [math.prod(shape)] + [hidden] * layers
        body: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            if pieces >= 2:  # (a Dropout module even at p = 0 keeps the checkpoint layout of format 1)
                body += [Maxout(a, b, pieces), nn.Dropout(dropout)]
            else:
                body += [nn.Linear(a, b), nn.ReLU(True)] + ([nn.Dropout(dropout)] if dropout > 0 else [])
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
    kept_fakes: tuple[torch.Tensor, torch.Tensor | None] | None = None  # D's fakes, for G's step (reuse_fakes)

    @classmethod
    def build_generator(cls, config, data_shape):
        return MLPGenerator(config.nz, config.g_hidden, config.g_layers, data_shape)

    @classmethod
    def build_discriminators(cls, config, data_shape):
        return {"D": MLPDiscriminator(data_shape, config.d_hidden, config.d_layers, config.maxout_pieces,
                                      config.dropout)}

    @classmethod
    def check_config(cls, config, data_kind):
        super().check_config(config, data_kind)
        if config.pack > 1 and cls.is_conditional(config):
            raise GankitError("pack > 1 (PacGAN) needs an unconditional family: packed samples have no single label")
        if config.augment != "none" and data_kind != "image":
            raise GankitError(f"augment={config.augment} transforms images; use augment=none on {data_kind} data")

    @classmethod
    def discriminator_input_shape(cls, config, data_shape):
        return (data_shape[0] * config.pack, *data_shape[1:])

    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        augment = make_augment(config.augment, policy=config.augment_policy, target=config.ada_target,
                               interval=config.ada_interval, speed_images=config.ada_speed)
        if augment is not None:
            self.aux["augment"] = augment
        self.epoch_size = 0  # training examples per epoch, from bind_data (top-k's schedule)
        self.topk_fraction = 1.0  # of G's fakes its step learns from, set by begin_step

    def bind_data(self, dataset) -> None:
        """Keeps the epoch length for top-k's per-epoch schedule."""
        self.epoch_size = len(dataset)

    def begin_step(self, step: int) -> None:
        """Top-k's fraction at ``step`` (Sinha et al. 2020, §3: k starts at the batch size and
        decays by ``topk_gamma`` each epoch down to ``topk`` of it): a function of the step alone."""
        c = self.config
        epochs = step * c.batch_size // self.epoch_size if self.epoch_size else 0
        self.topk_fraction = max(c.topk, c.topk_gamma ** epochs) if c.topk < 1 else 1.0

    def prepare_nets(self, nets):
        if self.config.spectral_norm:
            for name, net in nets.items():
                if name != self.generator_key:
                    apply_spectral_norm(net)
        return nets

    def build_optimizers(self):
        c = self.config
        return {"G": make_optimizer(c, self.nets["G"].parameters(), c.lr_g),
                "D": make_optimizer(c, self.nets["D"].parameters(), c.lr_d, self.lazy_r1_interval())}

    def lazy_r1_interval(self) -> int:
        """D steps between lazy R1 steps, or 0 when R1 (if any) is part of every D step."""
        c = self.config
        return c.reg_interval if c.reg == "r1" and c.reg_interval > 1 else 0

    def eager_reg(self) -> bool:
        """Whether the configured penalty is part of every D step (not a lazy R1 phase of its own)."""
        return self.config.reg != "none" and not self.lazy_r1_interval()

    def phases(self):
        c = self.config
        self.d_loss_fn, self.g_loss_fn = adversarial_losses(c.loss)
        clip = (lambda: clip_weights(self.nets["D"], c.clip)) if c.clip > 0 else None
        phases = [Phase("D", modules=("D",), optimizer="D", loss=self.discriminator_loss, repeats=c.d_steps,
                        after_step=clip, double_backward=self.eager_reg())]
        if self.lazy_r1_interval():
            phases.append(Phase("D_reg", modules=("D",), optimizer="D", loss=self.lazy_reg_loss,
                                interval=c.reg_interval, same_batch=True, fp32=True, after_step=clip,
                                double_backward=True))
        phases.append(Phase("G", modules=("G",), optimizer="G", loss=self.generator_loss, repeats=c.g_steps,
                            uses_data=False))
        return phases

    # ---- what D sees: augmentation, then packing ---------------------------------------------
    def d_input(self, x: torch.Tensor) -> torch.Tensor:
        """Real or fake samples as D receives them: augmented (same random ops for both kinds,
        Zhao 2020 §3), then packed."""
        augment = self.aux.get("augment")
        if augment is not None:
            x = augment(x)
        return pack(x, self.config.pack)

    def discriminate(self, D: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """D's logits for inputs already through :meth:`d_input`."""
        return D(x, y) if self.is_conditional(self.config) else D(x)

    def discriminator_loss(self, batch: Batch):
        """One D step on a real batch and as many fakes (Algorithm 1 of Goodfellow 2014, inner
        loop), plus the configured regulariser on D."""
        c = self.config
        D = self.train_nets["D"]
        fake, fake_y = self.fakes_for_d(batch.x.shape[0], batch.x.device, batch.y)
        real_in, fake_in = self.d_input(batch.x), self.d_input(fake)
        real_logits = self.discriminate(D, real_in, batch.y)
        fake_logits = self.discriminate(D, fake_in, fake_y)
        loss = self.d_loss_fn(real_logits, fake_logits)
        logs = self.d_stats(real_logits, fake_logits)
        if self.eager_reg():
            penalty = regularizer(c.reg, lambda x: self.discriminate(D, x, batch.y), real_in, fake_in)
            logs["loss/reg"] = penalty.detach()
            loss = loss + (c.reg_weight if c.reg == "gp" else c.reg_weight / 2) * penalty
        augment = self.aux.get("augment")
        if augment is not None and hasattr(augment, "observe"):
            augment.observe(real_logits)
            # the buffers themselves (copied to float32): no host sync in the training step
            logs.update({"aug/p": augment.p.float(), "aug/rt": augment.rt.float()})
        logs["loss/d"] = loss.detach()
        return loss, logs

    def lazy_r1(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Lazy R1's unweighted penalty E||grad D(x)||^2 on the reals D just judged (StyleGAN2,
        Karras et al. 2020, App. B), and a zero that keeps every D parameter in the graph (for DDP:
        D's output bias does not reach the input gradient). The gradient is taken w.r.t. the reals
        before augmentation (as stylegan2-ada does) and its norm per input of D (per pack, as the
        eager R1)."""
        x = batch.x.detach().float().requires_grad_(True)
        logits = self.discriminate(self.train_nets["D"], self.d_input(x), batch.y)
        (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        return pack(grad, self.config.pack).flatten(1).square().sum(1).mean(), 0 * logits.sum()

    def lazy_reg_loss(self, batch: Batch):
        """R1's own D step every ``reg_interval`` steps: gamma / 2 * interval * E||grad D(x)||^2."""
        c = self.config
        penalty, zero = self.lazy_r1(batch)
        return penalty * (c.reg_weight / 2 * c.reg_interval) + zero, {"loss/reg": penalty.detach()}

    def d_stats(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """D's mean output on reals and fakes: a probability for the logistic losses, the raw
        critic value otherwise (with the Wasserstein estimate E f(x) - E f(G(z)))."""
        real, fake = real_logits.detach().float(), fake_logits.detach().float()
        if self.config.loss in PROBABILISTIC:
            return {"d/real": torch.sigmoid(real).mean(), "d/fake": torch.sigmoid(fake).mean()}
        logs = {"d/real": real.mean(), "d/fake": fake.mean()}
        if self.config.loss == "wasserstein":
            logs["loss/wdist"] = real.mean() - fake.mean()
        return logs

    def fakes_for_d(self, n: int, device: torch.device, labels: torch.Tensor | None):
        """D's fakes, without a graph; with ``reuse_fakes`` made with G's graph (G's parameters
        require grad for this forward only) and kept for G's step."""
        self.kept_fakes = None
        if not (self.config.reuse_fakes and not distributed()):
            with torch.no_grad():
                return self.fake_batch(n, device, labels=labels)
        G = self.nets[self.generator_key]
        G.requires_grad_(True)
        try:
            fake, fake_y = self.fake_batch(n, device, labels=labels)
        finally:
            G.requires_grad_(False)
        self.kept_fakes = (fake, fake_y)
        return fake.detach(), fake_y

    def fakes_for_g(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The fakes D's step kept (``reuse_fakes``), else fresh ones."""
        kept, self.kept_fakes = self.kept_fakes, None
        return kept if kept is not None else self.fake_batch(self.config.batch_size, self.device)

    def generator_loss(self, batch: Batch | None):
        """One G step on fresh noise (Algorithm 1, outer update), or on D's fakes (``reuse_fakes``)."""
        fake, fake_y = self.fakes_for_g()
        logits = self.discriminate(self.train_nets["D"], self.d_input(fake), fake_y)
        loss = self.g_loss_fn(most_realistic(logits, self.topk_fraction))
        logs = {"loss/g": loss.detach()}
        if self.topk_fraction < 1:
            logs["g/topk"] = torch.tensor(self.topk_fraction)
        return loss, logs

    @property
    def device(self) -> torch.device:
        return next(self.nets[self.generator_key].parameters()).device
