"""Uploads to the studio, read with bounds: a file over ``max_bytes``, a picture over
``max_pixels`` (checked from the header, before any pixel is decoded: decompression bombs) or a
file that is not an image ends in one :class:`GankitError` line the page shows."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from gankit.data.images import BadImage, decode_image
from gankit.errors import GankitError

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 16_000_000  # 4,000 x 4,000


def read_upload(path: str | Path | None, *, channels: int | None = 3, resolution: int | None = None,
                max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS, what: str = "picture") -> np.ndarray:
    """The uploaded file at ``path`` as (H, W, 3) (or (H, W) for ``channels=1``) uint8, centre
    cropped and resized to ``resolution`` when given."""
    if path is None:
        raise GankitError(f"upload a {what} first")
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise GankitError(f"the uploaded {what} is gone; upload it again") from None
    if size > max_bytes:
        raise GankitError(f"{path.name} is {size / 2**20:.1f} MB; the studio takes files up to "
                          f"{max_bytes / 2**20:.0f} MB")
    data = path.read_bytes()
    limit = f"the studio takes pictures up to {max_pixels / 1e6:.0f} MP"
    try:
        with Image.open(io.BytesIO(data)) as im:  # reads the header only
            w, h = im.size
    except Image.DecompressionBombError:  # PIL's own bound (2 x 89 MP) already refused the header
        raise GankitError(f"{path.name} claims far more pixels than it has bytes for (a decompression bomb): "
                          f"refused, {limit}") from None
    except Exception:
        raise GankitError(f"{path.name} is not a picture the studio can read (PNG, JPEG, WebP, BMP, ...)") from None
    if w * h > max_pixels:
        raise GankitError(f"{path.name} is {w}x{h} pixels ({w * h / 1e6:.0f} MP): refused, {limit}")
    try:
        image = decode_image(data, channels, resolution)
    except BadImage as exc:
        raise GankitError(f"cannot read {path.name}: {exc}") from None
    return image
