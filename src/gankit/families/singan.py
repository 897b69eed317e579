"""SinGAN: Shaham, Dekel & Michaeli 2019, "SinGAN: Learning a Generative Model from a Single
Natural Image" (ICCV 2019, arXiv:1905.01164).

One image, a pyramid of scales (:func:`gankit.nn.singan.pyramid`), and one small patch GAN per
scale, trained coarse to fine (§2). Step ``s`` of the engine is iteration ``s mod I`` of scale
``s div I`` (I = ``iters_per_scale``): the scale, its learning rates and its start (copying the
previous scale's weights when the widths match, measuring the noise amplitude) are pure
functions of the step, set in :meth:`SinGAN.begin_step`, so resume is exact inside a scale and
across scale boundaries. Per iteration, as the authors' ``train_single_scale``: 3 critic steps
(WGAN-GP, lambda 0.1, a fresh random input from the coarser scales each time) then 3 generator
steps on the adversarial loss plus alpha = 10 times the reconstruction loss ||G_n(z*, rec) - x_n||^2;
Adam(5e-4, 0.5, 0.999) with the rate x0.1 after 80 % of the scale's iterations.

Differences from the authors' code, each a fix of one of its users' reports:

- the generator steps recompute the fake with the iteration's noise instead of backpropagating
  three times through the one graph of the last critic step, which PyTorch >= 1.5 refuses
  (tamarott/SinGAN #103: "one of the variables needed for gradient computation has been
  modified by an inplace operation");
- any device, CPU included (#22: ``--not_cuda`` crashed);
- memory is estimated before training and an image too large is refused with the ``max_size``
  that fits (#52, #64, #29: out of memory at 600-1,000 px);
- ``train_depth`` > 1 trains the last scales together with lower rates for the lower ones, as
  ConSinGAN (Hinz et al. 2021, arXiv:2003.11512, §3.1: "concurrent" training, lr x 0.1 per
  scale below).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gankit.config import TrainConfig
from gankit.errors import GankitError
from gankit.families.base import Family, Phase
from gankit.nn.optim import adam
from gankit.nn.singan import SinGANDiscriminator, channels_at, estimate_peak_bytes, pyramid, resize_picture
from gankit.nn.singan_pyramid import SinGANPyramid
from gankit.registry import register


@dataclass
class SinGANConfig(TrainConfig):
    # the pyramid (authors' defaults: min_size 25, max_size 250, scale factor 0.75)
    min_size: int = 25
    max_size: int = 250
    scale_factor: float = 0.75
    # the networks: 5 convs of nfc channels, doubling every 4 scales up to nfc_max
    nfc: int = 32
    nfc_max: int = 128
    num_layers: int = 5
    # training: 2,000 iterations per scale, lr x lr_drop after lr_drop_at of them (MultiStepLR 1600)
    iters_per_scale: int = 2000
    lr_g: float = 5e-4
    lr_d: float = 5e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_drop_at: float = 0.8
    lr_drop: float = 0.1
    d_steps: int = 3
    g_steps: int = 3
    gp_weight: float = 0.1  # lambda of the gradient penalty
    alpha: float = 10.0  # weight of the reconstruction loss
    noise_amp_init: float = 0.1  # sigma_n = noise_amp_init x RMSE of the reconstruction
    # ConSinGAN's concurrent training: the last train_depth scales train together, the rate of
    # each lower one times lower_lr
    train_depth: int = 1
    lower_lr: float = 0.1
    # the image (filled from the data) and the memory allowed for training (0: what is free)
    height: int = 0
    width: int = 0
    memory_gb: float = 0.0
    # engine: batch 1, no EMA, steps 0 = every scale (scales x iters_per_scale)
    steps: int = 0
    batch_size: int = 1
    ema: bool = False
    resolution: int = 0
    n_snapshot: int = 8
    log_every: int = 50
    snapshot_every: int = 500
    checkpoint_every: int = 500

    PRESETS: ClassVar = {
        # CI: a 3-scale pyramid of a small picture, 4 iterations per scale, 8 channels
        "tiny": dict(min_size=15, max_size=32, nfc=8, nfc_max=8, iters_per_scale=4, d_steps=1, g_steps=1,
                     log_every=2, snapshot_every=4, checkpoint_every=4, n_snapshot=4),
        # a 250 px photo on 2 CPU cores in under 30 minutes (docs/families/singan.md): 32 channels at
        # every scale, one critic and one generator step per iteration, and ConSinGAN's concurrent
        # training of two scales, which gave the lowest patch SWD per CPU minute of four variants
        # (bench/results/singan_budget.json)
        "small": dict(nfc_max=32, d_steps=1, g_steps=1, train_depth=2, iters_per_scale=320, log_every=40,
                      snapshot_every=320, checkpoint_every=160),
        "paper": dict(),  # the authors' main.py defaults
        # super-resolution (gankit upscale): the authors' SR mode, alpha 100, scale factor 2^(-1/3)
        # and min_size 18, trained on the low-resolution picture with the small preset's budget
        "sr": dict(nfc_max=32, d_steps=1, g_steps=1, train_depth=2, iters_per_scale=320, alpha=100.0,
                   scale_factor=0.5 ** (1 / 3), min_size=18, log_every=40, snapshot_every=320,
                   checkpoint_every=160),
    }

    def validate(self) -> None:
        super().validate()
        if self.ema:
            raise GankitError("singan keeps no moving average of G (one image, batch 1): drop ema=true")
        if self.decay_from != 1:
            raise GankitError("singan sets its learning rates per scale (x lr_drop after lr_drop_at of each): "
                              "decay_from does not apply")
        if self.eval_every:
            raise GankitError("singan learns one picture: eval_every's set metrics do not apply (score a run with "
                              "bench/singan_budget.py or gankit.metrics.single_image)")
        if self.batch_size != 1:
            raise GankitError("singan trains on its one image: batch_size must be 1")
        if self.iters_per_scale < 1 or self.d_steps < 1 or self.g_steps < 1:
            raise GankitError("iters_per_scale, d_steps and g_steps must be >= 1")
        if not 0 < self.lr_drop_at <= 1 or not 0 < self.lr_drop <= 1:
            raise GankitError("lr_drop_at and lr_drop must be in (0, 1]")
        if self.train_depth < 1 or not 0 < self.lower_lr <= 1:
            raise GankitError("train_depth must be >= 1 and lower_lr in (0, 1]")
        if self.nfc < 1 or self.nfc_max < self.nfc or self.num_layers < 2:
            raise GankitError("singan needs nfc >= 1, nfc_max >= nfc and num_layers >= 2")
        if self.alpha < 0 or self.gp_weight < 0 or self.noise_amp_init < 0 or self.memory_gb < 0:
            raise GankitError("alpha, gp_weight, noise_amp_init and memory_gb must be >= 0")
        pyramid(16, 16, min_size=min(self.min_size, 16), max_size=self.max_size,
                scale_factor=self.scale_factor)  # the pyramid's own range checks


def scale_sizes(config: SinGANConfig) -> list[tuple[int, int]]:
    """The pyramid of the run's image, coarsest first."""
    if not (config.height and config.width):
        raise GankitError("singan's config has no image size: it is filled in when the image loads")
    p = pyramid(config.height, config.width, min_size=config.min_size, max_size=config.max_size,
                scale_factor=config.scale_factor)
    return list(p.sizes)


def training_bytes(config: SinGANConfig, sizes: list[tuple[int, int]] | None = None) -> int:
    """Peak training memory (:func:`estimate_peak_bytes`); with ``train_depth`` k, the last k
    scales' bounds are summed (their graphs live together), which overcounts the weights."""
    sizes = scale_sizes(config) if sizes is None else sizes
    depth = min(config.train_depth, len(sizes))
    return sum(estimate_peak_bytes(sizes[:k], config.channels or 3, base=config.nfc, cap=config.nfc_max,
                                   num_layers=config.num_layers) for k in range(len(sizes) - depth + 1, len(sizes) + 1))


def free_memory_bytes(device: str) -> tuple[int, str]:
    """Bytes free for training and where: the GPU's free memory when training there, else the
    host's available memory (Linux ``MemAvailable``; physical memory elsewhere)."""
    if torch.cuda.is_available() and (device in ("auto", "cuda") or device.startswith("cuda:")):
        free, _ = torch.cuda.mem_get_info(torch.device(device if device.startswith("cuda") else "cuda"))
        return int(free), "on the GPU"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available on this machine"
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "on this machine"


def check_memory(config: SinGANConfig) -> tuple[int, int, str]:
    """Refuse an image whose training would not fit: one line naming the ``max_size`` that
    would (the largest, in steps of 10 px). Returns (needed, allowed, where)."""
    needed = training_bytes(config)
    if config.memory_gb:
        allowed, where = int(config.memory_gb * 1024**3), "allowed by memory_gb"
    else:
        allowed, where = free_memory_bytes(config.device)
    if needed <= allowed:
        return needed, allowed, where
    fits = None
    for size in range(min(config.max_size, max(config.height, config.width)) - 10, config.min_size, -10):
        trial = SinGANConfig(**{**config.to_dict(), "max_size": size})
        try:
            if training_bytes(trial) <= allowed:
                fits = size
                break
        except GankitError:
            break
    hint = f"--set max_size={fits} fits" if fits else "no max_size fits: free memory or set memory_gb"
    raise GankitError(f"a {config.height}x{config.width} image at max_size={config.max_size} needs about "
                      f"{needed / 1024**3:.1f} GB to train, more than the {allowed / 1024**3:.1f} GB {where}; {hint}")


@register
class SinGAN(Family):
    name = "singan"
    description = "SinGAN (Shaham et al. 2019): one image, a pyramid of patch GANs; samples, harmonise, paint, upscale"
    paper = "arXiv:1905.01164"
    Config = SinGANConfig
    data_kinds = ("image",)
    single_image = True
    one_process_why = "it learns one picture with batch 1"
    architecture_keys = ("min_size", "max_size", "scale_factor", "nfc", "nfc_max", "num_layers", "height", "width",
                         "channels")

    # ---- data and plan ------------------------------------------------------------------------
    @classmethod
    def load_data(cls, config: SinGANConfig):
        from gankit.data.single_image import load_single_image

        dataset = load_single_image(config.data, channels=config.channels or None)
        _, c, h, w = dataset.data.shape
        if config.height and (config.height, config.width) != (h, w):  # a resumed run on another picture
            raise GankitError(f"{config.data} is {h}x{w}; this run was trained on a {config.height}x{config.width} image")
        config.channels, config.height, config.width = int(c), int(h), int(w)
        sizes = scale_sizes(config)
        if config.steps == 0:
            config.steps = len(sizes) * config.iters_per_scale
        check_memory(config)
        return dataset

    @classmethod
    def sample_shape(cls, config: SinGANConfig) -> tuple[int, ...]:
        return (config.channels, config.height, config.width)

    @classmethod
    def training_plan(cls, config: SinGANConfig) -> list[str]:
        """What the run prints before training: the pyramid, the steps and the memory."""
        sizes = scale_sizes(config)
        needed, allowed, where = check_memory(config)
        widths = sorted({channels_at(n, config.nfc, config.nfc_max) for n in range(len(sizes))})
        return [f"pyramid: {len(sizes)} scales, " + " -> ".join(f"{h}x{w}" for h, w in sizes),
                f"{config.iters_per_scale:,} iterations per scale ({config.steps:,} steps), {widths[0]}-{widths[-1]} "
                f"channels, train_depth {config.train_depth}",
                f"peak memory about {needed / 1024**2:,.0f} MB of {allowed / 1024**3:.1f} GB {where}"]

    @classmethod
    def describe(cls, config: SinGANConfig, step: int | None = None) -> dict[str, str]:
        """The pyramid, and for a run stopped before its last scale the finest one trained: its
        samples are that scale's output upsampled to the finest size."""
        sizes = scale_sizes(config)
        reached = len(sizes) if not step else min((step - 1) // config.iters_per_scale + 1, len(sizes))
        h, w = sizes[-1]
        text = f"{len(sizes)} scales (0..{len(sizes) - 1}), " + " -> ".join(f"{a}x{b}" for a, b in sizes)
        if reached < len(sizes):
            a, b = sizes[reached - 1]
            text += f"; trained up to scale {reached - 1} ({a}x{b}) so far, its output upsampled"
        return {"pyramid": text + f"; samples are {h}x{w}, pictures given to harmonize and paint are resized to it"}

    # ---- networks -----------------------------------------------------------------------------
    @classmethod
    def build_generator(cls, config, data_shape):
        return SinGANPyramid(scale_sizes(config), data_shape[0], base=config.nfc, cap=config.nfc_max,
                             num_layers=config.num_layers)

    @classmethod
    def build_discriminators(cls, config, data_shape):
        sizes = scale_sizes(config)
        return {"D": nn.ModuleList(SinGANDiscriminator(data_shape[0], channels_at(n, config.nfc, config.nfc_max),
                                                       config.num_layers) for n in range(len(sizes)))}

    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        self.G: SinGANPyramid = self.nets["G"]
        self.G.active.fill_(1)
        self.scale, self.iteration = 0, 0
        self._noise: torch.Tensor | None = None  # the iteration's noise (scale n and, for train_depth > 1, below)
        self._prev: torch.Tensor | None = None
        self._rec_prev: dict[int, torch.Tensor] = {}
        # maps the inputs from the coarser scales before scale n sees them (paint-to-image's
        # colour quantisation, :func:`retrain_scale`); None in normal training
        self.input_transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    def bind_data(self, dataset) -> None:
        """Fill the pyramid of real images from the (1, C, H, W) uint8 picture."""
        from gankit.data import to_signed

        image = to_signed(dataset.data[:1]).to(self.G.noise_amp.device)
        # shrunk into max_size first, as the authors' adjust_scales2image
        self.G.set_reals(resize_picture(image, self.G.sizes[-1]))

    @classmethod
    def latent_dim(cls, config) -> int:
        sizes = scale_sizes(config)
        return sizes[0][0] * sizes[0][1] + config.channels * sum(h * w for h, w in sizes[1:])

    def build_optimizers(self):
        c = self.config
        make = lambda nets, lr: adam([{"params": list(m.parameters())} for m in nets], lr, (c.beta1, c.beta2))  # noqa: E731
        return {"G": make(self.nets["G"].gens, c.lr_g), "D": make(self.nets["D"], c.lr_d)}

    def phases(self):
        c = self.config
        return [Phase("D", ("D",), "D", self.critic_loss, repeats=c.d_steps, uses_data=False, fp32=True,
                      double_backward=True),
                Phase("G", ("G",), "G", self.generator_loss, repeats=c.g_steps, uses_data=False)]

    # ---- the schedule -------------------------------------------------------------------------
    def position(self, step: int) -> tuple[int, int]:
        """(scale, iteration within it) of ``step``; steps past the last scale stay on it."""
        n = min(step // self.config.iters_per_scale, len(self.G) - 1)
        return n, step - n * self.config.iters_per_scale

    def begin_step(self, step: int) -> None:
        n, i = self.position(step)
        self.scale, self.iteration = n, i
        self.G.active.fill_(n + 1)
        self._noise = None
        if i == 0:
            self.start_scale(n)
        self._set_rates(n, i)

    @torch.no_grad()
    def start_scale(self, n: int) -> None:
        """The first iteration of scale ``n``: draw z* (scale 0), or copy G_{n-1} and D_{n-1} into
        the new scale when their widths match and set sigma_n = noise_amp_init x RMSE(x_n, rec)."""
        G, D, c = self.G, self.nets["D"], self.config
        self._rec_prev.clear()
        if n == 0:
            G.z_rec.copy_(torch.randn(G.z_rec.shape, device=G.z_rec.device))
            G.noise_amp[0] = 1.0
            return
        if channels_at(n, c.nfc, c.nfc_max) == channels_at(n - 1, c.nfc, c.nfc_max):
            G.gens[n].load_state_dict(G.gens[n - 1].state_dict())
            D[n].load_state_dict(D[n - 1].state_dict())
        self._set_modes(n, trainable_from=n)
        rmse = F.mse_loss(self.rec_prev(n), G.real(n)).sqrt()
        G.noise_amp[n] = c.noise_amp_init * rmse

    def _set_rates(self, n: int, i: int) -> None:
        """Scale n's groups at the configured rate (x lr_drop late in the scale); with
        train_depth k, the k - 1 scales below at x lower_lr per scale; every other group 0."""
        c = self.config
        drop = c.lr_drop if i >= c.lr_drop_at * c.iters_per_scale else 1.0
        for name, base in (("G", c.lr_g), ("D", c.lr_d)):
            for k, group in enumerate(self.optimizers[name].param_groups):
                below = n - k
                on = below == 0 or (name == "G" and 0 < below < c.train_depth)
                group["lr"] = base * drop * self.lr_scale * c.lower_lr ** below if on else 0.0

    def _set_modes(self, n: int, trainable_from: int) -> None:
        """Scales being trained run BatchNorm in training mode, the finished ones in eval mode
        (the authors' ``G_curr.eval()`` once a scale is done)."""
        for k, g in enumerate(self.G.gens):
            g.train(trainable_from <= k <= n)
        self.nets["D"][n].train()

    def trainable_from(self, n: int) -> int:
        return max(0, n - self.config.train_depth + 1)

    # ---- the losses ---------------------------------------------------------------------------
    def input_to(self, n: int, noises: list[torch.Tensor | None] | None, trainable_from: int) -> torch.Tensor:
        """The image fed to scale ``n``: scales 0..n-1 run on ``noises`` (None: the reconstruction
        noise z*) and are upsampled to scale n's size; zeros at scale 0. Scales below
        ``trainable_from`` run without a graph."""
        G = self.G
        if n == 0:
            return G.z_rec.new_zeros(1, G.channels, *G.sizes[0])
        return G.synthesize([None] * n if noises is None else noises, G.sizes[:n + 1], stop=n,
                            rec_below=n if noises is None else 0, frozen_below=trainable_from)

    def rec_prev(self, n: int) -> torch.Tensor:
        """The reconstruction's input to scale ``n``; cached while the scales below are frozen."""
        start = self.trainable_from(n)
        if start < n:  # concurrent training: the lower scales change every step
            return self._transformed(self.input_to(n, None, start))
        if n not in self._rec_prev:  # in fp32 always: start_scale fills it outside autocast, and a
            # run resumed inside a scale refills it in a loss under bf16 autocast (resume is exact)
            with torch.autocast(device_type=self.G.z_rec.device.type, enabled=False):
                self._rec_prev[n] = self.input_to(n, None, n)
        return self._transformed(self._rec_prev[n])

    def _transformed(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.input_transform is None else self.input_transform(x)

    def _draw_noise(self, n: int) -> list[torch.Tensor]:
        return [torch.randn(1, *shape, device=self.G.z_rec.device) for shape in self.G.noise_shapes()[:n + 1]]

    def critic_loss(self, _batch):
        """-D(x_n) + D(G_n(z, prev)) + lambda GP, prev = a random sample of the scales below (fresh
        each critic step); the iteration's z is drawn once, at its first critic step."""
        n, G, c = self.scale, self.G, self.config
        D = self.nets["D"][n]
        self._set_modes(n, self.trainable_from(n))
        if self._noise is None:
            self._noise = self._draw_noise(n)
        lower = self._draw_noise(n - 1) if n > 0 else []
        self._prev_noises = lower
        self._prev = self._transformed(self.input_to(n, lower, n + 1))  # no graph: the critic step
        with torch.no_grad():
            fake = G.step(n, self._noise[n], self._prev)
        real = G.real(n)
        d_real, d_fake = D(real).mean(), D(fake).mean()
        gp = singan_gradient_penalty(D, real, fake)
        loss = d_fake - d_real + c.gp_weight * gp
        return loss, {"loss/D": loss.detach(), "loss/gp": gp.detach(), "loss/w_dist": (d_real - d_fake).detach()}

    def generator_loss(self, _batch):
        """-D(G_n(z, prev)) + alpha ||G_n(z*, rec) - x_n||^2 on the last critic step's z and prev
        (recomputed: with train_depth > 1 through the scales trained together)."""
        n, G, c = self.scale, self.G, self.config
        D = self.nets["D"][n]
        start = self.trainable_from(n)
        self._set_modes(n, start)
        prev = self._prev if start == n else self._transformed(self.input_to(n, self._prev_noises, start))
        fake = G.step(n, self._noise[n], prev)
        adv = -D(fake).mean()
        rec = G.step(n, G.rec_noise(n), self.rec_prev(n))
        rec_loss = F.mse_loss(rec, G.real(n))
        loss = adv + c.alpha * rec_loss
        return loss, {"loss/G": adv.detach(), "loss/rec": rec_loss.detach(),
                      "singan/scale": torch.tensor(float(n)), "singan/noise_amp": G.noise_amp[n].detach().clone()}


def singan_gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The authors' ``calc_gradient_penalty``: one interpolation weight for the image, and the
    gradient's L2 norm taken over channels at each pixel, ((||grad||_c - 1)^2) averaged over
    pixels (a per-pixel form of Gulrajani et al. 2017's Eq. 3, natural for a patch critic)."""
    with torch.autocast(device_type=real.device.type, enabled=False):
        eps = torch.rand(1, device=real.device)
        x = (eps * real.float() + (1 - eps) * fake.float().detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
        return (grad.norm(2, dim=1) - 1).square().mean()


def retrain_scale(model, n: int, transform: Callable[[torch.Tensor], torch.Tensor], *, iters: int | None = None,
                  device: str = "cpu") -> None:
    """Train scale ``n`` of a loaded singan ``model`` again, with ``transform`` applied to what the
    coarser scales feed it, and put the result into ``model.generator`` (G_n and sigma_n).

    The authors' paint-to-image with quantisation (``paint2image.py --quantization_flag``,
    ``train_paint``, mode ``paint_train``): G_n learns to turn colour-quantised inputs into the real
    image, so a flat-colour painting injected at scale n comes out photo-like. It runs the engine's
    own trainer from the first step of scale n (its schedule, losses and seeds) with fresh
    critics; ``iters`` defaults to the run's ``iters_per_scale``."""
    import dataclasses
    import tempfile
    from pathlib import Path

    from gankit.data import Dataset
    from gankit.engine.runtime import Runtime, resolve_device
    from gankit.engine.trainer import Trainer

    G = model.generator
    if not 1 <= n < len(G):
        raise GankitError(f"scale {n} is outside the pyramid: choose 1..{len(G) - 1}")
    c = model.config
    iters = c.iters_per_scale if iters is None else iters
    config = dataclasses.replace(c, iters_per_scale=iters, steps=(n + 1) * iters, train_depth=1, device=device)
    image = G.real(len(G) - 1).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(SinGAN, config, Dataset(image, source="retrain"), Path(tmp),
                          Runtime(resolve_device(device)), quiet=True)
        trainer.load_init({"G": {k: v for k, v in G.state_dict().items()}})
        trainer.family.input_transform = transform
        trainer.step = n * iters
        while trainer.step < config.steps:
            trainer.train_step()
        trained = trainer.family.G
        G.gens[n].load_state_dict(trained.gens[n].state_dict())
        G.noise_amp[n] = trained.noise_amp[n].to(G.noise_amp.device)


__all__ = ["retrain_scale", "SinGAN", "SinGANConfig", "check_memory", "scale_sizes", "singan_gradient_penalty"]
