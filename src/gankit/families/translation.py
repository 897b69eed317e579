"""What every image-to-image family shares: two-domain data, a direction, translating instead of
sampling, and snapshots of inputs beside outputs.

Pix2Pix (Isola et al. 2017), CycleGAN (Zhu et al. 2017), DiscoGAN (Kim et al. 2017) and StarGAN
(Choi et al. 2018) run on the same engine as the noise-to-image families: their update rules
are phases, their generators are saved, averaged and exported like any other. What changes is
the input of the generator (an image, not z) and so what a snapshot shows and what a trained
model offers (:meth:`TranslationFamily.translate`, ``Model.translate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from gankit.config import TrainConfig
from gankit.data import Dataset
from gankit.errors import GankitError
from gankit.families.base import Batch, Family
from gankit.nn.optim import adam

DIRECTIONS = ("AtoB", "BtoA")


@dataclass
class TranslationConfig(TrainConfig):
    """Options shared by the image-to-image families."""

    data: str = "mnist-edges"
    data_b: str = ""  # domain B as its own source (`--data-b`); empty: `data` holds both domains
    channels_b: int = 0  # 0 = follow the data (filled in when training starts)
    direction: str = "AtoB"  # AtoB: domain A is the input; BtoA: domain B is (pix2pix facades: BtoA)
    resolution: int = 256
    ema: bool = False  # the papers use the raw generator
    lr: float = 2e-4  # Adam(2e-4, 0.5, 0.999): pix2pix App. 6.2, CycleGAN §4
    beta1: float = 0.5
    beta2: float = 0.999

    def validate(self) -> None:
        super().validate()
        if self.direction not in DIRECTIONS:
            raise GankitError(f"direction must be AtoB or BtoA, got {self.direction!r}")
        r = self.resolution
        if r < 16 or r & (r - 1):
            raise GankitError(f"translation families need a power-of-two resolution >= 16, got {r}")


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class TranslationFamily(Family):
    """Base of the image-to-image families. Subclasses set ``paired_data`` (the layout they
    train on), build their networks from :meth:`io_channels`, and may override
    :meth:`translate` and :meth:`snapshot_columns`."""

    translates: ClassVar[bool] = True
    paired_data: ClassVar[bool] = True
    data_kinds: ClassVar[tuple[str, ...]] = ("paired",)
    step_under_way: int = 0  # begin_step's step, for loss schedules (DiscoGAN's curriculum, StarGAN's id_start)
    # the CLI command that applies a trained model to files (SRGAN's is `gankit upscale`)
    apply_command: ClassVar[str] = "translate"
    Config: ClassVar[type[TrainConfig]] = TranslationConfig

    # ---- data ---------------------------------------------------------------------------------
    @classmethod
    def load_data(cls, config: TranslationConfig) -> Dataset:
        from gankit.data.two_domain import load_two_domain

        dataset = load_two_domain(config.data, paired=cls.paired_data, data_b=config.data_b or None,
                                  channels=config.channels or None, channels_b=config.channels_b or None,
                                  resolution=config.resolution, max_images=config.max_images or None)
        config.channels, config.channels_b = dataset.shape[0], dataset.shape_b[0]
        config.num_classes = 0
        return dataset

    @classmethod
    def io_channels(cls, config: TranslationConfig) -> tuple[int, int]:
        """(input channels, output channels) of the trained direction."""
        a, b = config.channels, config.channels_b or config.channels
        return (a, b) if config.direction == "AtoB" else (b, a)

    # ---- training -----------------------------------------------------------------------------
    def build_optimizers(self):
        """Adam for G, and one Adam for all the discriminators together (as the reference code)."""
        c = self.config
        betas = (c.beta1, c.beta2)
        others = [p for name, net in self.nets.items() if name != self.generator_key for p in net.parameters()]
        return {"G": adam(self.nets[self.generator_key].parameters(), c.lr, betas), "D": adam(others, c.lr, betas)}

    def begin_step(self, step: int) -> None:
        """Records the step for the loss schedules (the engine decays the rates: ``decay_from``)."""
        self.step_under_way = step

    @staticmethod
    def source_target(config: TranslationConfig, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(input domain, output domain) images of a batch, as the direction says."""
        if batch.x_b is None:
            raise GankitError("this family needs two-domain data (domain B is missing)")
        return (batch.x, batch.x_b) if config.direction == "AtoB" else (batch.x_b, batch.x)

    @classmethod
    def latent_dim(cls, config: TrainConfig) -> int:
        return 0

    # ---- using a trained generator ----------------------------------------------------------
    @classmethod
    def input_size(cls, config: TranslationConfig) -> tuple[int, int] | None:
        """The (H, W) inputs must have; None when any size works (SRGAN's fully convolutional G)."""
        return config.resolution, config.resolution

    @classmethod
    def input_channels(cls, config: TranslationConfig, direction: str | None = None) -> int:
        return cls.io_channels(config)[0]

    @classmethod
    def translate(cls, G: nn.Module, config: TranslationConfig, x: torch.Tensor, *, direction: str | None = None,
                  attrs: torch.Tensor | None = None) -> torch.Tensor:
        """Translate a batch of input images (already on G's device); one-way families only
        translate the direction they were trained in."""
        if direction is not None and direction != config.direction:
            raise GankitError(f"this {cls.name} model translates {config.direction} only (it was trained that way); "
                              f"drop --direction or train with --set direction={direction}")
        cls.refuse_attrs(attrs)
        return G(x)

    @classmethod
    def refuse_attrs(cls, attrs) -> None:
        """Target attributes are StarGAN's (which overrides the methods that take them)."""
        if attrs is not None and (not isinstance(attrs, dict) or attrs):
            raise GankitError(f"{cls.name} takes no attributes; drop --attrs")

    @classmethod
    def translation_columns(cls, model, images: torch.Tensor, *, direction: str | None = None,
                            attrs: dict[str, float] | None = None) -> list[tuple[str, torch.Tensor]]:
        """What ``gankit translate`` shows beside each input: ``[(label, outputs)]``; the first
        column is also written out image by image."""
        cls.refuse_attrs(attrs)
        return [(direction or model.config.direction, model.translate(images, direction=direction))]

    # ---- pictures -----------------------------------------------------------------------------
    @classmethod
    def snapshot_columns(cls, G: nn.Module, config: TranslationConfig, batch: Batch) -> list[torch.Tensor]:
        """The columns of a snapshot: input, output and (paired data) the target."""
        src, dst = cls.source_target(config, batch)
        return [src, G(src), dst]

    @classmethod
    @torch.no_grad()
    def snapshot_picture(cls, G: nn.Module, config: TranslationConfig, batch: Batch) -> np.ndarray:
        """Rows of fixed data items, each shown as its :meth:`snapshot_columns` side by side."""
        from gankit.viz import make_grid

        was_training = G.training
        G.eval()
        try:
            columns = [to_rgb(c.float().cpu().clamp(-1, 1)) for c in cls.snapshot_columns(G, config, batch)]
        finally:
            G.train(was_training)
        per_item = len(columns)
        tiles = torch.stack(columns, dim=1).flatten(0, 1)  # item-major: each item's columns in a row
        items_per_row = max(1, 12 // per_item)
        return make_grid(tiles, nrow=per_item * items_per_row)


def prepare_inputs(family_cls: type[TranslationFamily], config: TranslationConfig, images: torch.Tensor,
                   direction: str | None = None) -> torch.Tensor:
    """Images (uint8 or float in [-1, 1], NCHW) as the model's input: float in [-1, 1], grey
    photos repeated to colour or colour ones reduced to their luma as the model needs."""
    from gankit.data import to_signed
    from gankit.data.two_domain import luma

    if direction is not None and direction not in DIRECTIONS:
        raise GankitError(f"direction must be AtoB or BtoA, got {direction!r}")
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[0] == 0:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise GankitError(f"translate takes a batch of at least one image (N, C, H, W), got {shape}")
    x = to_signed(images)
    want = family_cls.input_channels(config, direction)
    if x.shape[1] != want:
        if x.shape[1] == 3 and want == 1:  # colour photos into a grey-input model: their luma
            x = luma(x)
        elif x.shape[1] == 1 and want == 3:
            x = x.expand(-1, 3, -1, -1)
        else:
            raise GankitError(f"the model takes {want}-channel inputs, got {x.shape[1]} channels")
    size = family_cls.input_size(config)
    if size is not None and tuple(x.shape[2:]) != size:
        raise GankitError(f"the model takes {size[1]}x{size[0]} images, got {x.shape[3]}x{x.shape[2]}")
    return x


@torch.no_grad()
def translate_images(family_cls: type[TranslationFamily], G: nn.Module, config: TranslationConfig,
                     images: torch.Tensor, *, direction: str | None = None, attrs: torch.Tensor | None = None,
                     batch_size: int = 64) -> torch.Tensor:
    """Translate ``images`` (see :func:`prepare_inputs`) in eval mode; returns CPU float images in [-1, 1]."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise GankitError(f"batch_size must be at least 1, got {batch_size!r}")
    x = prepare_inputs(family_cls, config, images, direction)
    device = next(G.parameters()).device
    was_training = G.training
    G.eval()
    try:
        out = []
        for start in range(0, len(x), batch_size):
            a = None if attrs is None else attrs[start:start + batch_size].to(device)
            out.append(family_cls.translate(G, config, x[start:start + batch_size].to(device), direction=direction,
                                            attrs=a).float().cpu())
        return torch.cat(out).clamp_(-1, 1)
    finally:
        G.train(was_training)
