"""Training data of super-resolution: high-resolution patches cut from photos of any size.

SRGAN (Ledig et al. 2017, §3.1) trains on "random 96x96 HR sub images" of ImageNet photos, the
low-resolution inputs made by bicubic downsampling (x4). Here every photo of a folder (a zip, one
file, or the built-in pictures ``pictures``) is decoded at its own size and cut into ``crop``
patches on a grid of ``stride`` (half a crop by default, so neighbouring patches overlap and
every part of a photo is seen at several offsets); the family draws random flips and 90-degree
turns on top. The patches are held in memory as uint8 like every other dataset, at most
``max_patches`` of them (evenly chosen over the whole set when there are more).

Real pairs (``data_b``): a folder of low-resolution photos with the same file names (sub-paths)
as the high-resolution ones and exactly 1/scale their size (rounded down). Their patches are
cut at the same places, ``crop // scale`` pixels wide: the dataset is ``kind="paired"`` with
``data`` the HR patches and ``data_b`` the LR ones.

A photo smaller than a crop, or a pair whose sizes do not match the scale, is skipped and
counted; when no patch is left the load ends with one line saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from gankit.data import images
from gankit.data.dataset import Dataset
from gankit.errors import GankitError

BUILTIN_PICTURES = "pictures"  # the built-in pictures (gankit.data.single_image.BUILTIN_DIR) as one folder


def patch_corners(height: int, width: int, crop: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of the ``crop`` patches on a ``stride`` grid, the last row and column
    moved flush with the bottom and right edges so no border is left out."""
    def starts(size: int) -> list[int]:
        out = list(range(0, size - crop + 1, stride))
        if out and out[-1] != size - crop:
            out.append(size - crop)
        return out

    return [(y, x) for y in starts(height) for x in starts(width)]


def _source_path(spec: str | os.PathLike) -> Path:
    if isinstance(spec, str) and spec.strip().lower() == BUILTIN_PICTURES:
        from gankit.data.single_image import BUILTIN_DIR

        return BUILTIN_DIR
    path = Path(spec).expanduser()
    if not path.exists():
        raise GankitError(f"dataset not found: {path.absolute()} does not exist (give a folder of photos, a .zip, "
                          f"one image, or the built-in {BUILTIN_PICTURES!r})")
    return path.resolve()


def _decoded(path: Path, channels: int, skipped: list[tuple[str, str]]):
    """``(name, HWC uint8 array)`` of every readable image under ``path`` (a folder, zip or file)."""
    if path.is_file() and path.suffix.lower() != ".zip":
        from gankit.data.single_image import load_image_file

        yield path.name, _hwc(load_image_file(path, channels))
        return
    src = images.open_source(path)
    try:
        for entry, array in images.iter_decoded(src, skipped, channels=channels):
            yield entry.name, _hwc(array)
    finally:
        src.close()


def _hwc(a: np.ndarray) -> np.ndarray:
    return a[:, :, None] if a.ndim == 2 else a


def load_patches(spec: str | os.PathLike, *, crop: int, scale: int, channels: int = 3, stride: int = 0,
                 data_b: str | os.PathLike | None = None, max_patches: int = 0, max_images: int = 0) -> Dataset:
    """HR patches ``(N, C, crop, crop)`` uint8 of the photos of ``spec`` (and with ``data_b`` the
    matching LR patches, ``(N, C, crop/scale, crop/scale)``). See the module docstring."""
    if crop < 1 or crop % scale:
        raise GankitError(f"the crop ({crop} px) must be a multiple of the scale ({scale})")
    stride = stride or max(1, crop // 2)
    path = _source_path(spec)
    low_root = None if data_b is None else _source_path(data_b)
    skipped: list[tuple[str, str]] = []
    hr, lr = [], []
    used = 0
    for name, image in _decoded(path, channels, skipped):
        h, w = image.shape[:2]
        if h < crop or w < crop:
            skipped.append((name, f"{w}x{h} is smaller than the {crop} px crop"))
            continue
        low = None
        if low_root is not None:
            low = _matching_low(low_root, name, (h, w), scale, channels, skipped)
            if low is None:
                continue
        step = 1 if low is None else scale  # real pairs: corners on the LR grid
        for y, x in patch_corners(h - h % step, w - w % step, crop, stride - stride % step or step):
            hr.append(image[y:y + crop, x:x + crop])
            if low is not None:
                s, c = scale, crop // scale
                lr.append(low[y // s:y // s + c, x // s:x // s + c])
        used += 1
        if max_images and used >= max_images:
            break
    if not hr:
        reasons = "; ".join(f"{n}: {r}" for n, r in skipped[:3]) or "no image files"
        raise GankitError(f"{path}: no {crop} px patch could be cut for x{scale} super-resolution ({reasons})")
    keep = np.arange(len(hr))
    if max_patches and len(hr) > max_patches:
        keep = np.linspace(0, len(hr) - 1, max_patches).round().astype(int)
    data = torch.from_numpy(np.stack([hr[i] for i in keep]).transpose(0, 3, 1, 2).copy())
    data_low = None if low_root is None else torch.from_numpy(np.stack([lr[i] for i in keep]).transpose(0, 3, 1, 2).copy())
    source = BUILTIN_PICTURES if str(spec).strip().lower() == BUILTIN_PICTURES else str(path)
    source += f" ({used} photo{'s' if used != 1 else ''})"
    return Dataset(data=data, kind="image" if data_low is None else "paired", skipped=skipped, source=source,
                   data_b=data_low, source_b="" if low_root is None else str(low_root), noun="patch")


def _matching_low(root: Path, name: str, hr_size: tuple[int, int], scale: int, channels: int,
                  skipped: list[tuple[str, str]]) -> np.ndarray | None:
    """The LR photo of ``name`` under ``root`` (same sub-path, any image extension), checked to be
    the HR size / scale; None (and a skip) otherwise."""
    from gankit.data.single_image import load_image_file

    stem = Path(name).with_suffix("")
    found = [p for p in (root / stem.parent).glob(stem.name + ".*") if p.suffix.lower() in images.IMAGE_EXTENSIONS]
    if not found:
        skipped.append((name, f"no low-resolution partner {stem}.* in {root}"))
        return None
    try:
        low = _hwc(load_image_file(found[0], channels))
    except GankitError as exc:
        skipped.append((name, str(exc)))
        return None
    want = (hr_size[0] // scale, hr_size[1] // scale)
    if low.shape[:2] != want:
        skipped.append((name, f"its low-resolution partner is {low.shape[1]}x{low.shape[0]}, not "
                              f"{want[1]}x{want[0]} (1/{scale} of {hr_size[1]}x{hr_size[0]})"))
        return None
    return low
