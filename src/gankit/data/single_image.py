"""One picture as a dataset: what SinGAN (and, later, single-image super-resolution) train on.

``--data`` is an image file of any format and mode PIL reads (grey, palette, RGBA over white,
16-bit), a folder holding exactly one image, or a built-in picture name (:data:`BUILTIN_IMAGES`,
shipped in ``gankit/data/builtin/images`` with their credits). The image keeps its own size and
aspect: the family derives its pyramid from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gankit.data.dataset import Dataset
from gankit.data.images import IMAGE_EXTENSIONS, BadImage, decode_image, image_batch
from gankit.errors import GankitError

BUILTIN_DIR = Path(__file__).parent / "builtin" / "images"


def builtin_images() -> dict[str, Path]:
    """Built-in single pictures by name (the file stem), e.g. ``balloons`` -> its path."""
    if not BUILTIN_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(BUILTIN_DIR.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS}


def resolve_image_path(spec: str | Path) -> Path:
    """The file behind ``spec``: a built-in name, a file, or a folder with exactly one image."""
    text = str(spec)
    builtins = builtin_images()
    if text.strip().lower() in builtins and not Path(text).exists():
        return builtins[text.strip().lower()]
    path = Path(text).expanduser()
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if len(found) != 1:
            raise GankitError(f"one image is needed here: give an image file, or a folder holding exactly one "
                              f"({path} holds {len(found)} images)")
        return found[0]
    if not path.is_file():
        names = ", ".join(builtins) or "none"
        raise GankitError(f"no such image: {path} (built-in pictures: {names})")
    return path


def load_image_file(path: str | Path, channels: int | None = None) -> np.ndarray:
    """Decode one user image to (H, W) or (H, W, 3) uint8; a bad file is a user error."""
    path = Path(path)
    try:
        return decode_image(path.read_bytes(), channels, None)
    except BadImage as exc:
        raise GankitError(f"cannot read the image {path}: {exc}") from None
    except OSError as exc:
        raise GankitError(f"cannot read the image {path}: {exc.strerror or exc}") from None


def mask_tensor(spec: str | Path) -> torch.Tensor:
    """A mask file as (1, 1, H, W) float in [-1, 1], white = the region. Transparency counts as
    black: a white shape on a transparent background marks the shape (decoding for pictures puts
    transparency on white, which made such a mask white everywhere)."""
    from PIL import Image

    path = resolve_image_path(spec)
    try:
        with Image.open(path) as im:
            im.load()
            if "A" in im.getbands() or "transparency" in im.info:
                rgba = im.convert("RGBA")
                black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                im = Image.alpha_composite(black, rgba)
            grey = np.asarray(im.convert("L"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise GankitError(f"cannot read the mask {path}: {exc}") from None
    return torch.from_numpy(grey.copy())[None, None].float().div(127.5).sub(1)


def load_single_image(spec: str | Path, channels: int | None = None) -> Dataset:
    """A :class:`Dataset` of one uint8 image ``(1, C, H, W)`` at its own size; ``channels`` None
    keeps a grey image grey (1 channel), else RGB."""
    path = resolve_image_path(spec)
    return Dataset(image_batch(load_image_file(path, channels)).contiguous(), source=str(spec))


def image_tensor(spec: str | Path, channels: int) -> torch.Tensor:
    """An image file as a float tensor (1, ``channels``, H, W) in [-1, 1] (inputs of the
    single-image applications: a pasted picture, a mask, a painting)."""
    return image_batch(load_image_file(resolve_image_path(spec), channels)).float().div(127.5).sub(1)
