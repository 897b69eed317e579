"""The in-memory dataset every loader returns.

GAN training sets here are small enough (thousands to tens of thousands of images at 32-256 px)
to hold as one uint8 tensor, which keeps the training loop free of per-step decoding and lets the
engine move the whole set to the GPU. Images stay uint8 (4x smaller than float); the engine
scales them to [-1, 1] itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Dataset:
    """A decoded dataset: images ``(N, C, H, W)`` uint8 or 2-D points ``(N, 2)`` float32.

    Two-domain data for image-to-image translation (:mod:`gankit.data.two_domain`) adds domain B
    in ``data_b`` (uint8 ``(M, C_b, H, W)``, same H and W): ``kind="paired"`` when item i of A
    and item i of B show the same scene (M == N; Pix2Pix), ``kind="unpaired"`` when the two are
    independent sets (CycleGAN, DiscoGAN). ``data`` is always domain A.

    Multi-attribute data (StarGAN) keeps ``kind="image"`` and adds ``attributes``: float32
    ``(N, K)`` of 0/1, one column per name in ``attribute_names``. Labelled data (``fairface``, a
    folder with ``labels.csv``) has them too, one column per value (``race=East Asian``); ``where``
    is the ``--where`` filter the items were chosen by (:mod:`gankit.data.where`), "" for all.
    """

    data: torch.Tensor
    labels: torch.Tensor | None = None
    classes: list[str] | None = None
    kind: str = "image"
    skipped: list[tuple[str, str]] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)  # class folders with no image read: left out
    source: str = ""
    data_b: torch.Tensor | None = None
    source_b: str = ""
    attributes: torch.Tensor | None = None
    attribute_names: list[str] | None = None
    where: str = ""
    noun: str = "image"  # what an item is, for the summary: "patch" (super-resolution's crops)
    # Captioned data (text-to-image, StackGAN): each item's captions as token ids (N, K, L) int64,
    # 0-padded (K = the most captions of any item, L = the longest caption), ``text_count`` (N,) how
    # many of the K are real; ``captions`` the texts themselves and ``vocabulary`` their tokens.
    text: torch.Tensor | None = None
    text_count: torch.Tensor | None = None
    captions: list[list[str]] | None = None
    vocabulary: list[str] | None = None
    text_table: torch.Tensor | None = None  # pretrained sentence embeddings, row i = caption index i + 1

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def num_classes(self) -> int:
        """Number of classes, 0 when the source has no labels."""
        if self.labels is None:
            return 0
        return len(self.classes) if self.classes is not None else int(self.labels.max()) + 1

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(3, 64, 64)`` or ``(2,)``."""
        return tuple(self.data.shape[1:])

    @property
    def shape_b(self) -> tuple[int, ...] | None:
        """Shape of one domain-B image, None for single-domain data."""
        return None if self.data_b is None else tuple(self.data_b.shape[1:])

    def summary(self) -> str:
        """One line for logs and the CLI, e.g. ``mnist: 10,000 images 1x32x32, 10 classes``."""
        n = len(self)
        if self.kind == "points":
            text = f"{self.source}: {n:,} points {'x'.join(map(str, self.shape))}-D"
        else:
            noun = self.noun if n == 1 else self.noun + ("es" if self.noun.endswith("ch") else "s")
            text = f"{self.source}: {n:,} {noun} {'x'.join(map(str, self.shape))}"
        if self.data_b is not None:
            m = int(self.data_b.shape[0])
            text = (f"{self.source}: {self.kind} A {n:,} x {'x'.join(map(str, self.shape))} -> "
                    f"B {m:,} x {'x'.join(map(str, self.shape_b))}")
        if self.where:
            text += f" where {self.where}"
        if self.captions is not None:
            text += f", {sum(len(c) for c in self.captions):,} captions ({len(self.vocabulary or [])} words)"
        if self.num_classes:
            text += f", {self.num_classes} classes"
        if self.attribute_names:
            text += f", {_attribute_text(self.attribute_names)}"
        if self.skipped:
            names = [name for name, _ in self.skipped[:3]]
            if len(self.skipped) > 3:
                names.append("...")
            noun = "file" if len(self.skipped) == 1 else "files"
            text += f" (skipped {len(self.skipped)} bad {noun}: {', '.join(names)})"
        if self.empty_classes:
            names = ", ".join(self.empty_classes[:3]) + (", ..." if len(self.empty_classes) > 3 else "")
            text += f" (no image read in {names}: not a class)"
        return text


def _attribute_text(names: list[str]) -> str:
    """``attributes Smiling, Male``; many categorical columns in short: ``labels age (9 values), ...``."""
    if len(names) <= 8:
        return f"attributes {', '.join(names)}"
    columns: dict[str, int] = {}
    for name in names:
        columns[name.split("=", 1)[0]] = columns.get(name.split("=", 1)[0], 0) + 1
    parts = [f"{c} ({k} values)" if k > 1 else c for c, k in columns.items()]
    return "labels " + ", ".join(parts[:8]) + (f", ... ({len(parts)} in all)" if len(parts) > 8 else "")


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as datasets hold them -> float in [-1, 1] as generators give them;
    float tensors pass through (as float32)."""
    if images.dtype == torch.uint8:
        return images.float().div_(127.5).sub_(1.0)
    return images.float()
