"""The family contract.

A family owns its config, its networks, the phases of its update rule and how its generator
is driven. The engine (``gankit.engine``) owns everything else. Training phases are data, as
in NVlabs' stylegan2-ada ``training_loop.py``: one mechanism runs a GAN's alternating D/G
steps, WGAN's five critic steps per generator step, lazy regularisers every N steps, and
several generators at once.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from gankit.config import TrainConfig
from gankit.errors import GankitError


@dataclass
class Batch:
    """Real data for one phase repeat, already on the device.

    ``x``: float images NCHW in [-1, 1] (or points (N, 2)); ``y``: int64 labels or None.
    Two-domain data adds ``x_b``, domain B's images (item i pairs with ``x[i]`` when the data
    is paired); attribute data adds ``attrs``, float (N, K) of 0/1; captioned data ``text``, one of
    each item's captions (drawn at random) as token ids.
    """

    x: torch.Tensor
    y: torch.Tensor | None = None
    x_b: torch.Tensor | None = None
    attrs: torch.Tensor | None = None
    text: torch.Tensor | None = None  # captioned data: one caption per item, token ids (N, L), 0-padded


LossFn = Callable[[Batch | None], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class Phase:
    """One optimisation phase: ``loss(batch)`` is minimised w.r.t. ``modules`` by ``optimizer``.

    The phase runs on steps where ``step % interval == 0`` (and ``active(step)``, when given:
    SRGAN's discriminator waits out the MSE pretraining), ``repeats`` times in a row, and draws a
    fresh real batch per repeat when ``uses_data``, or is given the batch the previous phase of
    the same step drew when ``same_batch`` (Pix2Pix's G step on the pairs D just judged; a fresh
    one when no phase before it ran this step).
    """

    name: str
    modules: tuple[str, ...]
    optimizer: str
    loss: LossFn
    interval: int = 1
    repeats: int = 1
    uses_data: bool = True
    same_batch: bool = False
    after_step: Callable[[], None] | None = None  # e.g. WGAN's weight clipping, after each optimizer step
    fp32: bool = False  # no autocast: a double-backward regulariser (bf16 gradients of gradients lose too much)
    # the loss backpropagates through a gradient (R1, a gradient penalty, path length): with
    # `compile` the phase sees the uncompiled modules (AOTAutograd has no double backward)
    double_backward: bool = False
    active: Callable[[int], bool] | None = None  # a function of the step alone, so resume stays exact

    def runs_at(self, step: int) -> bool:
        return step % self.interval == 0 and (self.active is None or self.active(step))


def linear_decay(step: int, steps: int, decay_from: float) -> float:
    """The learning-rate factor of CycleGAN (§7.1) and StarGAN (§5.2): 1 for the first
    ``decay_from`` share of the steps, then linearly down to 0 at the last step."""
    start = decay_from * steps
    if decay_from >= 1 or step < start:
        return 1.0
    return max(0.0, (steps - step) / max(1.0, steps - start))


class Family:
    """Base class of every family. Subclasses set the class attributes and implement
    :meth:`build_generator`, :meth:`build_discriminator`, :meth:`build_optimizers`,
    :meth:`phases`; sampling works for any generator that maps ``(z, y)`` to data."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    Config: ClassVar[type[TrainConfig]] = TrainConfig
    conditional: ClassVar[bool] = False  # needs class labels in the data (see also is_conditional)
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    generator_key: ClassVar[str] = "G"
    # Image-to-image families (gankit.families.translation) map images to images: no latent
    # noise, snapshots show inputs beside outputs, and ``Model.translate`` replaces ``sample``.
    translates: ClassVar[bool] = False
    # Whether precision=auto may pick bf16 on a CPU with bf16 units (AMX / AVX512-BF16): False
    # where bf16 was measured slower there (bench/family_speed.py, docs/benchmarks.md#speed-issue-18).
    bf16_on_cpu: ClassVar[bool] = True
    # Networks besides the generator that a loaded model needs (StarGAN's D reads attributes).
    inference_nets: ClassVar[tuple[str, ...]] = ()
    # config keys that fix the networks' shapes: a run started with --init takes them from its source
    architecture_keys: ClassVar[tuple[str, ...]] = ()
    # What `truncation` means: "z", z from a truncated normal (BigGAN's trick, any family);
    # "w", w pulled towards the tracked mean w (StyleGAN's, :meth:`generation_options`).
    truncation_space: ClassVar[str] = "z"
    # A mapping network and per-layer styles: G has .mapping(z) -> ws and .synthesis(ws, noise_mode).
    style_based: ClassVar[bool] = False
    # Some parameters get no gradient in some steps (ProGAN's later stages): DDP must look for them.
    unused_parameters: ClassVar[bool] = False
    # Samples are drawn for captions (StackGAN): ``cond`` is text (``gankit sample --text``).
    takes_text: ClassVar[bool] = False
    # Why torchrun cannot spread its training over processes ("": it can), said when it is tried.
    one_process_why: ClassVar[str] = ""
    # Learns one picture, not a set (SinGAN): set metrics (FID, ...) do not apply.
    single_image: ClassVar[bool] = False
    # G ends in a linear layer, no tanh (ProGAN, StyleGAN2): D trains on its raw output and only
    # what is sampled is clamped to [-1, 1].
    linear_output: ClassVar[bool] = False

    def __init__(self, config: TrainConfig, data_shape: tuple[int, ...]):
        self.config = config
        self.data_shape = tuple(data_shape)
        self.nets: dict[str, nn.Module] = {
            self.generator_key: self.build_generator(config, self.data_shape),
            **self.build_discriminators(config, self.discriminator_input_shape(config, self.data_shape)),
        }
        self.nets = self.prepare_nets(self.nets)
        # Modules used inside losses; the engine may replace them by DDP / compiled wrappers.
        self.train_nets: dict[str, nn.Module] = dict(self.nets)
        self.optimizers: dict[str, torch.optim.Optimizer] = self.build_optimizers()
        # Learning rates are this times the configured ones: the engine lowers it on a rollback
        # (on_divergence=rollback); a family that sets its rates every step multiplies by it.
        self.lr_scale = 1.0
        # Modules with state but no trained weights (e.g. ADA's augmentation probability): the
        # engine moves them to the device and saves them in checkpoints beside the networks.
        self.aux: dict[str, nn.Module] = {}

    # ---- what a family defines -------------------------------------------------------------
    @classmethod
    def load_data(cls, config: TrainConfig):
        """The training data of ``config``; fills the config's data-given fields (channels, classes).
        Families with other data layouts (two domains, attributes) override it."""
        from gankit.data import load_dataset

        dataset = load_dataset(config.data, channels=config.channels or None, resolution=config.resolution,
                               max_images=config.max_images or None, where=config.where or None)
        if dataset.kind == "image":
            config.channels = dataset.shape[0]
        config.num_classes = dataset.num_classes
        return dataset

    @classmethod
    def check_config(cls, config: TrainConfig, data_kind: str) -> None:
        """Reject configs this family cannot train (a user error)."""
        if data_kind not in cls.data_kinds:
            raise GankitError(
                f"family {cls.name!r} trains on {' or '.join(cls.data_kinds)} data, not {data_kind} data"
            )
        if cls.conditional and config.num_classes < 2:
            raise GankitError(
                f"family {cls.name!r} is conditional: give it data with class labels "
                "(class subfolders, or a labelled built-in such as mnist)"
            )

    @classmethod
    def build_generator(cls, config: TrainConfig, data_shape: tuple[int, ...]) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def build_discriminators(cls, config: TrainConfig, data_shape: tuple[int, ...]) -> dict[str, nn.Module]:
        raise NotImplementedError

    def bind_data(self, dataset) -> None:
        """Called once by the trainer with the training :class:`gankit.data.Dataset` (uint8 images
        on the CPU), before training or resuming: a family that keeps data inside its networks
        (SinGAN's image pyramid, StackGAN's table of caption embeddings) fills it here."""

    @classmethod
    def sample_shape(cls, config: TrainConfig) -> tuple[int, ...]:
        """The shape of one sample, from the config alone (what a loaded model builds its nets for)."""
        if config.channels == 0:  # trained on 2-D points
            return (2,)
        return (config.channels, config.resolution, config.resolution)

    @classmethod
    def output_shape(cls, config: TrainConfig) -> tuple[int, ...]:
        """The shape of one picture ``sample`` returns (CoGAN: its two domains side by side)."""
        return cls.sample_shape(config)

    @classmethod
    def describe(cls, config: TrainConfig, step: int | None = None) -> dict[str, str]:
        """Family-specific lines for ``gankit info`` (name -> text) of a model trained ``step``
        steps, e.g. SinGAN's pyramid."""
        return {}

    @classmethod
    def next_commands(cls, run) -> list[str]:
        """What ``gankit train`` suggests once a run is done (besides info and tensorboard)."""
        if cls.translates:
            return [f"gankit translate {run} --input IMAGE_OR_FOLDER --out {run}/translated"]
        return [f"gankit sample {run} --n 64 --out {run}/grid.png", f"gankit interpolate {run} --out {run}/walk.gif"]

    @classmethod
    def training_plan(cls, config: TrainConfig) -> list[str]:
        """Lines the run prints before training (e.g. SinGAN's pyramid and memory estimate)."""
        return []

    def prepare_nets(self, nets: dict[str, nn.Module]) -> dict[str, nn.Module]:
        """A last touch on the built networks before their optimizers exist (e.g. spectral norm)."""
        return nets

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def decay_learning_rates(self, step: int) -> None:
        """The engine's learning-rate schedule, before each step: with ``decay_from < 1`` every
        group's rate is scaled by :func:`linear_decay` at ``step`` over its value at ``step - 1``.
        The ratio keeps whatever else set the rates (a rollback's factor, StyleGAN2's per-group
        ratios, ``--resume --set lr_g``), and a checkpoint's rates already hold the factor of its
        step, so resume stays exact."""
        c = self.config
        if c.decay_from >= 1 or step == 0:
            return
        before = linear_decay(step - 1, c.steps, c.decay_from)
        ratio = linear_decay(step, c.steps, c.decay_from) / before if before > 0 else 1.0
        if ratio != 1.0:
            for opt in self.optimizers.values():
                for group in opt.param_groups:
                    group["lr"] *= ratio

    def begin_step(self, step: int) -> None:
        """Called before each training step with the number of steps done (0-based): where a
        family sets schedules that depend on the step, e.g. CycleGAN's linear learning-rate decay.
        Anything set here must be a function of ``step`` alone, so resume stays exact."""

    def ema_restart(self, steps_done: int) -> int:
        """The step count from which the generator EMA's warm-up (``min(decay, (1 + t) / (10 + t))``,
        t steps into it) counts once ``steps_done`` steps are done: 0, one warm-up at the start.
        A family whose generator gains fresh layers mid-run (ProGAN) restarts it there, so the
        average follows the new layers instead of lagging on their initial weights."""
        return 0

    @classmethod
    def latent_dim(cls, config: TrainConfig) -> int:
        return int(getattr(config, "nz"))

    @classmethod
    def discriminator_input_shape(cls, config: TrainConfig, data_shape: tuple[int, ...]) -> tuple[int, ...]:
        """What the discriminators see per input; PacGAN's packing widens it."""
        return tuple(data_shape)

    @classmethod
    def is_conditional(cls, config: TrainConfig) -> bool:
        """Whether G and D take class labels; families that use labels only when the data has
        them (SAGAN, BigGAN) decide from the config."""
        return cls.conditional

    # ---- driving the generator (shared by training, sampling and the latent tools) --------
    @classmethod
    def sample_latent(cls, config: TrainConfig, n: int, *, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu", truncation: float | None = None) -> torch.Tensor:
        """z ~ N(0, I), drawn on the CPU from ``generator`` so a seed gives the same z on every device.
        With ``truncation`` t, from the normal truncated to [-t, t] (:func:`truncate_latent`)."""
        z = torch.randn(n, cls.latent_dim(config), generator=generator)
        if truncation is not None:
            z = truncate_latent(z, truncation, generator=generator)
        return z.to(device)

    @classmethod
    def condition_for(cls, config: TrainConfig, n: int, cond: Any, generator: torch.Generator) -> torch.Tensor | None:
        """What G is conditioned on for ``n`` samples, from the user's ``cond``: class labels here
        (an index, a list or None for random ones); StackGAN turns captions into token ids."""
        return _labels_for(cls, config, n, cond, generator)

    @classmethod
    def sample_labels(cls, config: TrainConfig, n: int, *, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> torch.Tensor | None:
        if not cls.is_conditional(config):
            return None
        return torch.randint(0, config.num_classes, (n,), generator=generator).to(device)

    @classmethod
    def generate(cls, G: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None, **options) -> torch.Tensor:
        """Run the generator; labels are passed when there are any (conditional families);
        ``options`` are those of :meth:`generation_options`."""
        out = G(z, **options) if y is None else G(z, y, **options)
        return out.clamp(-1, 1) if cls.linear_output else out

    @classmethod
    def generation_options(cls, config: TrainConfig, *, truncation: float | None = None,
                           truncation_cutoff: int | None = None, noise: str | None = None) -> dict[str, Any]:
        """Keyword arguments for G when sampling. Families without styles take none: their
        ``truncation`` acts on z (:meth:`sample_latent`); a layer cutoff or a noise mode is an error."""
        if truncation_cutoff is not None or noise is not None:
            raise GankitError(f"{cls.name} has no style layers or noise inputs: a truncation cutoff and a noise "
                              f"mode apply to style-based families (stylegan2)")
        return {}

    @classmethod
    def snapshot_inputs(cls, config: TrainConfig, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """Fixed inputs for progress snapshots: ``(z, y, nrow)``.

        Conditional families lay out one row per class (the grid of Mirza & Osindero, Fig. 2)."""
        gen = torch.Generator().manual_seed(seed)
        if cls.is_conditional(config):
            per_row = max(1, n // config.num_classes) if n >= config.num_classes else 8
            z = cls.sample_latent(config, per_row * config.num_classes, generator=gen)
            y = torch.arange(config.num_classes).repeat_interleave(per_row)
            return z, y, per_row
        return cls.sample_latent(config, n, generator=gen), None, 0

    # ---- helpers for subclasses ------------------------------------------------------------
    def fake_batch(self, n: int, device: torch.device, *, labels: torch.Tensor | None = None):
        """(fake images, their labels) from the training generator with fresh noise."""
        z = torch.randn(n, self.latent_dim(self.config), device=device)
        y = None
        if self.is_conditional(self.config):
            y = labels if labels is not None else torch.randint(0, self.config.num_classes, (n,), device=device)
        G = self.train_nets[self.generator_key]
        return (G(z) if y is None else G(z, y)), y  # raw: D sees what G makes (see linear_output)


REJECTION_MIN = 0.0627  # P(|z| <= t) = 5% for a standard normal


def truncate_latent(z: torch.Tensor, truncation: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """The truncation trick (Brock et al. 2019, "BigGAN", arXiv:1809.11096, §3.1): every entry of
    ``z`` with |z| > ``truncation`` is redrawn from N(0, 1) until none is left, i.e. z comes from
    the truncated normal. Redraws come from the same CPU ``generator``, so a seed stays
    deterministic; entries already inside are kept. Lower values trade variety for fidelity.
    Below t = ``REJECTION_MIN`` (where fewer than 5% of redraws land inside, so the loop would run
    for minutes at t = 1e-6) the entries outside are drawn by the inverse CDF instead."""
    if not truncation > 0 or not math.isfinite(truncation):
        raise GankitError(f"truncation must be a finite number > 0, got {truncation}")
    z = z.clone()
    outside = z.abs() > truncation
    if truncation < REJECTION_MIN:
        edge = torch.special.ndtr(torch.tensor(-float(truncation), dtype=torch.float64))
        u = edge + (1 - 2 * edge) * torch.rand(int(outside.sum()), generator=generator, dtype=torch.float64)
        z[outside] = torch.special.ndtri(u).clamp_(-truncation, truncation).to(z.dtype)
        return z
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator, dtype=z.dtype)
        outside = z.abs() > truncation
    return z


@torch.no_grad()
def sample_images(family_cls: type[Family], G: nn.Module, config: TrainConfig, n: int, *, seed: int = 0,
                  cond: int | list[int] | torch.Tensor | None = None, z: torch.Tensor | None = None,
                  batch_size: int = 256, truncation: float | None = None, truncation_cutoff: int | None = None,
                  noise: str | None = None) -> torch.Tensor:
    """Draw ``n`` samples in [-1, 1] (NCHW, or (N, 2) points) from ``G`` in eval mode.

    ``cond`` is a class index, a list/tensor of indices (length n), or None (random classes).
    ``truncation``: for z-space families z comes from a truncated normal (BigGAN's trick; it
    cannot apply to a given ``z``); for style-based ones it is psi in W, with ``truncation_cutoff``
    and the ``noise`` mode (:meth:`Family.generation_options`).
    Returns a CPU float tensor. Deterministic for a seed on any device.
    """
    if family_cls.translates:
        raise GankitError(f"{family_cls.name} translates images instead of sampling noise: "
                          f"use `gankit {getattr(family_cls, 'apply_command', 'translate')}` "
                          f"(Python: model.translate(images))")
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise GankitError(f"the number of samples must be a whole number >= 1, got {n!r}")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise GankitError(f"seed must be a whole number, got {seed!r}")
    n, seed = int(n), int(seed)
    if z is not None:
        want = family_cls.latent_dim(config)
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != want or not z.is_floating_point():
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise GankitError(f"z must be a float tensor (N, {want}) for {family_cls.name}, got {shape}")
        z = z.float()
    in_w = family_cls.truncation_space == "w"
    options = family_cls.generation_options(config, truncation=truncation if in_w else None,
                                            truncation_cutoff=truncation_cutoff, noise=noise)
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    if z is None:
        z = family_cls.sample_latent(config, n, generator=gen, truncation=None if in_w else truncation)
    elif truncation is not None and not in_w:
        raise GankitError(f"{family_cls.name} truncates z when drawing it: sample with a seed instead of given z")
    y = family_cls.condition_for(config, n, cond, gen)
    was_training = G.training
    G.eval()
    try:
        chunks = []
        for start in range(0, n, batch_size):
            zb = z[start:start + batch_size].to(device)
            yb = None if y is None else y[start:start + batch_size].to(device)
            chunks.append(family_cls.generate(G, zb, yb, **options).float().cpu())
        return torch.cat(chunks).clamp_(-1, 1) if chunks[0].dim() == 4 else torch.cat(chunks)
    finally:
        G.train(was_training)


def _labels_for(family_cls: type[Family], config: TrainConfig, n: int, cond: Any, gen: torch.Generator):
    if not family_cls.is_conditional(config):
        if cond is not None:
            raise GankitError(f"family {family_cls.name!r} is not conditional; drop --class")
        return None
    if cond is None:
        return family_cls.sample_labels(config, n, generator=gen)
    y = torch.as_tensor(cond, dtype=torch.long).reshape(-1)
    if y.numel() == 1:
        y = y.expand(n).clone()
    if y.numel() != n:
        raise GankitError(f"got {y.numel()} class labels for {n} samples")
    if int(y.min()) < 0 or int(y.max()) >= config.num_classes:
        bad = sorted({int(v) for v in y if not 0 <= int(v) < config.num_classes})
        raise GankitError(f"class must be in 0..{config.num_classes - 1}, got {', '.join(map(str, bad[:5]))}")
    return y
