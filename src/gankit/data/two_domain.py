"""Two-domain data for image-to-image translation: the formats users already have, and built-in
tasks that need no download.

Paired data (Pix2Pix, Isola et al. 2017): item i of domain A and item i of domain B show the same
scene. Unpaired data (CycleGAN, Zhu et al. 2017; DiscoGAN, Kim et al. 2017): two independent sets.
:func:`load_two_domain` returns a :class:`~gankit.data.dataset.Dataset` with domain A in ``data``
and domain B in ``data_b`` (``kind`` ``"paired"`` or ``"unpaired"``).

Sources, in the order they are recognised:

``colorize:SOURCE``
    pairs made on the fly from any colour dataset (a folder, a zip or a built-in): A is the grey
    version (ITU-R 601 luma, 1 channel), B the colour image ("colour a black-and-white comic").
``edges:SOURCE``
    A is an edge map of each image (black lines on white, like a pen sketch), B the image.
``mnist-edges``, ``mnist-negative``, ``mnist-colour``
    built-in digit tasks with known ground truth: A is an MNIST digit, B its edge map / its
    negative / the digit drawn in its class's colour (so colouring it right needs knowing the digit).
``--data-b OTHER``
    two sources, A and B. Paired only when both hold the same number of images (matched in
    sorted file-name order).
a folder with ``trainA/`` and ``trainB/`` (the CycleGAN datasets) or ``A/`` and ``B/``
    the two domains; ``A/`` and ``B/`` with the same file names are paired.
any other folder or zip
    side-by-side pairs, A on the left and B on the right (the Pix2Pix datasets' format).

Asked for unpaired data, a paired source is split in two halves by item parity (A from the even
items, B from the odd ones), so no training pair exists, as the CycleGAN paper does with paired
sets. Both domains are resized (short side, centre crop) to ``resolution``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import GankitError
from . import images
from .builtin import _mnist, edge_map, negative
from .dataset import Dataset
from .loader import load_dataset

TASKS = ("colorize", "edges")
MNIST_TASKS: tuple[str, ...] = ("mnist-edges", "mnist-negative", "mnist-colour")
# One colour per digit class for ``mnist-colour`` (RGB, bright enough on black).
DIGIT_COLOURS = np.array([
    (255, 64, 64), (255, 160, 32), (240, 230, 40), (120, 230, 60), (40, 200, 160),
    (60, 200, 255), (70, 110, 255), (170, 90, 255), (255, 80, 200), (235, 235, 235),
], dtype=np.float32)
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B (PIL's convert("L"))


def describe_tasks() -> dict[str, str]:
    """The built-in two-domain sources, for help texts."""
    return {
        "colorize:SOURCE": "grey -> colour pairs made from any colour dataset",
        "edges:SOURCE": "edge map -> image pairs made from any dataset",
        "mnist-edges": "MNIST digit <-> its edge map (10,000 digits, shipped)",
        "mnist-negative": "MNIST digit <-> its negative (dark strokes on white)",
        "mnist-colour": "grey MNIST digit <-> the digit in its class's colour",
    }


def load_two_domain(spec: str | os.PathLike, *, paired: bool, data_b: str | os.PathLike | None = None,
                    channels: int | None = None, channels_b: int | None = None,
                    resolution: int | None = None, max_images: int | None = None) -> Dataset:
    """Domain A and domain B of ``spec`` (see the module doc), paired or unpaired."""
    if resolution is None:
        raise GankitError("two-domain data needs a resolution (both domains are resized to it)")
    text = str(spec)
    prefix, _, rest = text.partition(":")
    if data_b is not None:
        a = load_dataset(spec, channels=channels, resolution=resolution, max_images=max_images)
        b = load_dataset(data_b, channels=channels_b, resolution=resolution, max_images=max_images)
        if paired and len(a) != len(b):
            raise GankitError(f"paired data needs as many images in --data-b as in --data: "
                              f"{len(a):,} in {a.source}, {len(b):,} in {b.source}")
        return _two(a.data, b.data, paired=paired, source=a.source, source_b=b.source,
                    skipped=a.skipped + b.skipped, labels=a.labels if paired else None, classes=a.classes)
    if prefix in TASKS and rest:
        src = load_dataset(rest, channels=3 if prefix == "colorize" else channels_b, resolution=resolution,
                           max_images=max_images)
        made = grey(src.data) if prefix == "colorize" else sketch(src.data)
        return _split_or_pair(made, src.data, paired=paired, source=text, skipped=src.skipped,
                              labels=src.labels, classes=src.classes)
    if text in MNIST_TASKS:
        digits, labels = _mnist(resolution)
        n = len(digits) if max_images is None else min(max_images, len(digits))
        digits, labels = digits[:n], labels[:n]
        b = mnist_transform(text, digits, labels)
        return _split_or_pair(torch.from_numpy(digits.copy()).unsqueeze(1), torch.from_numpy(b),
                              paired=paired, source=text, labels=torch.from_numpy(labels.copy()),
                              classes=[str(d) for d in range(10)])
    path = Path(text).expanduser()
    folders = _subfolders(path) if path.is_dir() else None
    if folders is not None:
        folder_a, folder_b = folders
        if paired:
            _check_same_names(folder_a, folder_b)
        return load_two_domain(folder_a, data_b=folder_b, paired=paired, channels=channels, channels_b=channels_b,
                               resolution=resolution, max_images=max_images)
    if not path.exists():
        raise GankitError(f"dataset not found: {path.absolute()} does not exist and is not a two-domain task "
                          f"({', '.join(describe_tasks())})")
    a, b, skipped = _side_by_side(path, channels, channels_b, resolution, max_images)
    return _split_or_pair(a, b, paired=paired, source=str(path.resolve()), skipped=skipped)


# ---- making domains ---------------------------------------------------------------------------
def luma(x: torch.Tensor) -> torch.Tensor:
    """Float ``(N, 3, H, W)`` -> ``(N, 1, H, W)`` luma with :data:`LUMA` (linear, so any value range)."""
    return (x * torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)


def grey(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` -> ``(N, 1, H, W)`` uint8 luma, as PIL's ``convert("L")``."""
    if rgb.shape[1] == 1:
        return rgb.clone()
    return luma(rgb.float()).round().clamp(0, 255).to(torch.uint8)


def sketch(images_: torch.Tensor, share: float = 0.12) -> torch.Tensor:
    """Edge maps ``(N, 1, H, W)`` uint8, black lines on white: the ``share`` of pixels with the
    largest Sobel gradient magnitude (of the luma) in each image are lines."""
    x = grey(images_).float()
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = torch.nn.functional.conv2d(padded, kx)
    gy = torch.nn.functional.conv2d(padded, kx.transpose(2, 3))
    mag = (gx * gx + gy * gy).sqrt().flatten(1)
    threshold = mag.quantile(1.0 - share, dim=1, keepdim=True).clamp(min=1e-6)
    lines = (mag >= threshold).view_as(x)
    return torch.where(lines, 0, 255).to(torch.uint8)


def mnist_transform(task: str, digits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Domain B of a built-in MNIST task for ``(N, R, R)`` uint8 digits: ``(N, C, R, R)`` uint8."""
    if task == "mnist-edges":
        return edge_map(digits)[:, None]
    if task == "mnist-negative":
        return negative(digits)[:, None]
    if task == "mnist-colour":
        colours = DIGIT_COLOURS[labels]  # (N, 3)
        out = digits[:, None].astype(np.float32) / 255.0 * colours[:, :, None, None]
        return out.round().clip(0, 255).astype(np.uint8)
    raise GankitError(f"unknown MNIST task {task!r}; choose from {', '.join(MNIST_TASKS)}")


# ---- assembling -------------------------------------------------------------------------------
def _two(a: torch.Tensor, b: torch.Tensor, *, paired: bool, source: str, source_b: str = "",
         skipped=(), labels=None, classes=None) -> Dataset:
    if a.shape[2:] != b.shape[2:]:
        raise GankitError(f"the two domains have different image sizes {tuple(a.shape[2:])} and {tuple(b.shape[2:])}")
    return Dataset(data=a, data_b=b, kind="paired" if paired else "unpaired", source=source,
                   source_b=source_b or source, skipped=list(skipped), labels=labels,
                   classes=classes if labels is not None else None)


def _split_or_pair(a: torch.Tensor, b: torch.Tensor, *, paired: bool, source: str, skipped=(),
                   labels=None, classes=None) -> Dataset:
    """Pairs as given, or (unpaired) A from the even items and B from the odd ones."""
    if paired:
        return _two(a, b, paired=True, source=source, skipped=skipped, labels=labels, classes=classes)
    if len(a) < 2:
        raise GankitError(f"{source}: unpaired training needs at least 2 images (one per domain), got {len(a)}")
    return _two(a[0::2].contiguous(), b[1::2].contiguous(), paired=False, source=source, skipped=skipped,
                labels=None if labels is None else labels[0::2].contiguous(), classes=classes)


def is_domain_folder(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` is a folder of two domains: ``trainA/`` + ``trainB/`` or ``A/`` + ``B/``."""
    path = Path(str(spec)).expanduser()
    return path.is_dir() and _subfolders(path) is not None


def side_by_side_unpaired(two: Dataset, seed: int = 1606) -> Dataset:
    """Unpaired domains as one set of side-by-side images ``(N, C, R, 2R)``, A left and B right,
    for families that model the two domains jointly (CoGAN). Each side runs through its own
    seeded shuffle of its domain, so the left and right of an item are unrelated; the longer
    domain is used in full and the shorter one repeats. A grey domain beside a colour one is
    drawn in 3 channels."""
    a, b = two.data, two.data_b
    if b is None:
        raise GankitError("side-by-side pairs need two domains")
    if a.shape[1] != b.shape[1]:
        a, b = (x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x for x in (a, b))
    n = max(len(a), len(b))
    rng = np.random.RandomState(seed)
    order_a = torch.from_numpy(rng.permutation(n) % len(a))
    order_b = torch.from_numpy(rng.permutation(n) % len(b))
    return Dataset(data=torch.cat([a[order_a], b[order_b]], dim=3), kind="image",
                   source=f"{two.source} | {two.source_b}", skipped=list(two.skipped))


def _subfolders(path: Path) -> tuple[Path, Path] | None:
    for a, b in (("trainA", "trainB"), ("A", "B")):
        if (path / a).is_dir() and (path / b).is_dir():
            return path / a, path / b
    return None


def _check_same_names(folder_a: Path, folder_b: Path) -> None:
    names_a = [e.name for e in images.open_source(folder_a).entries]
    names_b = [e.name for e in images.open_source(folder_b).entries]
    if names_a != names_b:
        only = sorted(set(names_a) ^ set(names_b))
        hint = f" ({only[0]} is in only one of them)" if only else ""
        raise GankitError(f"paired folders {folder_a.name}/ and {folder_b.name}/ must hold the same file names"
                          f"{hint}; for unpaired domains use a translation family that trains unpaired")


def _side_by_side(path: Path, channels, channels_b, resolution: int, max_images):
    """Decode pictures that hold A | B side by side and cut them in halves (bad files skipped)."""
    src = images.open_source(path)
    halves_a, halves_b, skipped = [], [], []
    try:
        for entry, whole in images.iter_decoded(src, skipped):
            if max_images is not None and len(halves_a) >= max_images:
                break
            h, w = whole.shape[:2]
            if w < 2 or abs(w - 2 * h) > max(2, h // 10):
                skipped.append((entry.name, f"not a side-by-side pair ({w}x{h}, expected width = 2 x height)"))
                continue
            halves_a.append(images.resize_center_crop_array(np.ascontiguousarray(whole[:, : w // 2]), resolution))
            halves_b.append(images.resize_center_crop_array(np.ascontiguousarray(whole[:, w // 2:]), resolution))
    finally:
        src.close()
    if not halves_a:
        name, reason = skipped[0]
        raise GankitError(f"{path}: none of the {len(skipped)} files is a side-by-side pair (first: {name}: {reason})")
    return (torch.from_numpy(images.stack_images(halves_a, channels)),
            torch.from_numpy(images.stack_images(halves_b, channels_b)), skipped)
